package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/delivery"
)

func testDelivery(seq uint64, msg string) delivery.Delivery[[]byte] {
	return delivery.Delivery[[]byte]{Message: []byte(msg), ProducerID: "p1", ProducerEpoch: 7, SeqNr: delivery.SeqNr(seq)}
}

// TestFileDLQFormat: a file:// dead-letter queue is one JSON line a dead
// letter, with every field the README names; binary messages go in base64;
// a delivery is recorded once however often it is given again, across a
// reopening too; a line cut short is skipped and kept; removals hide
// records and compaction drops them.
func TestFileDLQFormat(t *testing.T) {
	dir := t.TempDir()
	q, err := openFileDLQ(dir, "orders")
	if err != nil {
		t.Fatal(err)
	}
	d := testDelivery(41, "poison")
	d.Headers = delivery.Headers{{Name: "trace", Value: "t1"}}
	ctx := context.Background()
	dls := []DeadLetter{
		newDeadLetter("orders", d, ReasonRefused, 1, 422, errors.New("hook answered 422")),
		newDeadLetter("orders", testDelivery(42, "\xff\x00binary"), ReasonAttempts, 5, 0, errors.New("connection refused")),
	}
	if err := q.record(ctx, dls); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "orders.dlq.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines:\n%s", len(lines), data)
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	meta, _ := first["metadata"].(map[string]any)
	want := map[string]any{"reason": "refused", "attempts": 1.0, "status": 422.0, "error": "hook answered 422", "message": "poison"}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("%s = %v, want %v in %s", k, first[k], v, lines[0])
		}
	}
	wantMeta := map[string]any{"stream": "orders", "producer_id": "p1", "epoch": 7.0, "seq_nr": 41.0}
	for k, v := range wantMeta {
		if meta[k] != v {
			t.Errorf("metadata.%s = %v, want %v in %s", k, meta[k], v, lines[0])
		}
	}
	if hs, _ := meta["headers"].([]any); len(hs) != 1 {
		t.Errorf("headers: %v", meta["headers"])
	}
	if at, err := time.Parse(time.RFC3339Nano, first["time"].(string)); err != nil || time.Since(at) > time.Minute {
		t.Errorf("time %v: %v", first["time"], err)
	}
	var second DeadLetter
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if second.Message != nil || string(second.Body()) != "\xff\x00binary" || !strings.Contains(lines[1], `"message_base64"`) || second.Status != 0 {
		t.Errorf("binary message: %s", lines[1])
	}

	// Given again (a consumer killed before it confirmed): not recorded
	// again, by this queue nor by one opened afresh.
	if err := q.record(ctx, dls[:1]); err != nil {
		t.Fatal(err)
	}
	q2, err := openFileDLQ(dir, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if err := q2.record(ctx, dls); err != nil {
		t.Fatal(err)
	}
	// A write cut short by a crash, then one more record after it.
	f, _ := os.OpenFile(filepath.Join(dir, "orders.dlq.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"time":"2026-`)
	f.Close()
	if err := q2.record(ctx, []DeadLetter{newDeadLetter("orders", testDelivery(43, "third"), ReasonRefused, 1, 400, errors.New("bad"))}); err != nil {
		t.Fatal(err)
	}
	records, bad, err := q2.list(ctx)
	if err != nil || bad != 1 || len(records) != 3 {
		t.Fatalf("snapshot: %d records, %d bad, %v", len(records), bad, err)
	}
	waiting, oldest, err := q2.stats()
	if err != nil || waiting != 3 || !oldest.Equal(records[0].Time) {
		t.Errorf("stats: %d %v %v", waiting, oldest, err)
	}

	// Replayed: removed, then compacted away; the cut line stays.
	if err := q2.remove(ctx, []DeadLetter{records[0], records[2]}); err != nil {
		t.Fatal(err)
	}
	if records, _, _ := q2.list(ctx); len(records) != 1 || records[0].Metadata.SeqNr != 42 {
		t.Errorf("after removal: %+v", records)
	}
	if waiting, _, _ := q2.stats(); waiting != 1 {
		t.Errorf("waiting after removal: %d", waiting)
	}
	if err := q2.tidy(ctx); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(filepath.Join(dir, "orders.dlq.jsonl"))
	if n := strings.Count(string(data), "\n"); n != 2 || !strings.Contains(string(data), `{"time":"2026-`) {
		t.Errorf("compacted:\n%s", data)
	}
	if _, err := os.Stat(filepath.Join(dir, "orders.dlq.removed")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the removals outlive compaction: %v", err)
	}
	// Nothing left: the files go.
	records, _, _ = q2.list(ctx)
	q2.remove(ctx, records[:1])
	os.WriteFile(filepath.Join(dir, "orders.dlq.jsonl"), []byte(mustJSON(t, &records[0])+"\n"), 0o600)
	if err := q2.tidy(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "orders.dlq.jsonl")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an empty queue keeps its file: %v", err)
	}
	if waiting, oldest, err := q2.stats(); waiting != 0 || !oldest.IsZero() || err != nil {
		t.Errorf("stats of an empty queue: %d %v %v", waiting, oldest, err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFileDLQUnwritable: a queue that cannot be written says so; nothing
// is counted as recorded.
func TestFileDLQUnwritable(t *testing.T) {
	dir := t.TempDir()
	q, err := openFileDLQ(dir, "s")
	if err != nil {
		t.Fatal(err)
	}
	// A directory where the records go: no write can succeed, even as root.
	if err := os.Mkdir(filepath.Join(dir, "s.dlq.jsonl"), 0o700); err != nil {
		t.Fatal(err)
	}
	err = q.record(context.Background(), []DeadLetter{newDeadLetter("s", testDelivery(1, "m"), ReasonRefused, 1, 400, nil)})
	if err == nil || !strings.Contains(err.Error(), "dead-letter queue") {
		t.Fatalf("record: %v", err)
	}
	if len(q.keys) != 0 {
		t.Errorf("a failed record counts as recorded: %v", q.keys)
	}
}

// TestNDJSONLines: lines end with \n or \r\n, empty ones are skipped, the
// last may lack its end; more than the limit, or none, is an error.
func TestNDJSONLines(t *testing.T) {
	got, err := ndjsonLines([]byte("a\r\n\nb\n\r\nc"), 3)
	if err != nil || len(got) != 3 || string(got[0]) != "a" || string(got[1]) != "b" || string(got[2]) != "c" {
		t.Errorf("%q %v", got, err)
	}
	var tooMany *tooManyLinesError
	if _, err := ndjsonLines([]byte("a\nb\nc\nd\n"), 3); !errors.As(err, &tooMany) || tooMany.Limit != 3 {
		t.Errorf("4 lines, limit 3: %v", err)
	}
	if _, err := ndjsonLines([]byte("\n\r\n"), 3); !errors.Is(err, errNoLines) {
		t.Errorf("no line: %v", err)
	}
	for _, m := range []string{"", "a\nb", "a\r"} {
		if !plain([]byte(m)) {
			t.Errorf("%q is no line", m)
		}
	}
	if plain([]byte(`{"a":1}`)) {
		t.Error("a JSON object is a line")
	}
}
