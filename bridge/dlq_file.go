package bridge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// fileDLQ is a dead-letter queue in a directory (BRIDGE_DLQ=file:///dir),
// one stream's in three files:
//
//	<stream>.dlq.jsonl    a DeadLetter a line, appended and synced before
//	                      the messages are confirmed
//	<stream>.dlq.removed  the key of each record replayed (and confirmed)
//	                      since, a line each, appended and synced
//	<stream>.dlq.lock     locked by whoever writes either, for a moment
//
// The consumer appends; `bridge dlq replay` appends removals as the
// replayed messages are confirmed, and at its end rewrites the records
// without the removed ones (or deletes both files when none is left), under
// the lock, so the consumer may run meanwhile. A record is appended only
// once per delivery (its key), even when a consumer killed before it
// confirmed is given the message again. A line that does not parse (a write
// cut short by a crash: its message was not confirmed, and is recorded
// again) is skipped, and kept.
type fileDLQ struct {
	dir, stream                 string
	records, removedFile, locks string

	mu    sync.Mutex
	keys  map[string]bool // every key in the records, removed or not
	cache fileDLQStats
}

type fileDLQStats struct {
	sig     [2]fileSig // of the records and the removals when counted
	waiting int
	oldest  time.Time
}

type fileSig struct {
	size int64
	mod  time.Time
}

// dlqDir returns the directory of a file:// BRIDGE_DLQ, or "" when it is
// not one.
func dlqDir(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "file" || u.Host != "" || !filepath.IsAbs(u.Path) {
		return ""
	}
	return filepath.Clean(u.Path)
}

func openFileDLQ(dir, stream string) (*fileDLQ, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("BRIDGE_DLQ: %w", err)
	}
	base := filepath.Join(dir, stream+".dlq")
	q := &fileDLQ{dir: dir, stream: stream, records: base + ".jsonl", removedFile: base + ".removed", locks: base + ".lock", keys: map[string]bool{}}
	err := q.locked(func() error {
		records, _, err := q.read(false)
		for i := range records {
			q.keys[records[i].key()] = true
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return q, nil
}

func (q *fileDLQ) Close() error { return nil }

func (q *fileDLQ) String() string {
	return "file://" + filepath.ToSlash(q.dir) + " (" + filepath.Base(q.records) + ")"
}

// locked runs fn holding the queue's lock (other processes' too).
func (q *fileDLQ) locked(fn func() error) error {
	f, err := os.OpenFile(q.locks, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("dead-letter queue: %w", err)
	}
	defer f.Close() // lets go of the lock
	if err := lockFile(f); err != nil {
		return fmt.Errorf("dead-letter queue: locking %s: %w", q.locks, err)
	}
	return fn()
}

// record appends dls, each not recorded before, and syncs: once it
// returns nil they survive a crash of this process and of the machine.
func (q *fileDLQ) record(_ context.Context, dls []DeadLetter) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	var buf bytes.Buffer
	var added []string
	for i := range dls {
		k := dls[i].key()
		if q.keys[k] || slicesContains(added, k) {
			continue
		}
		line, err := json.Marshal(&dls[i])
		if err != nil {
			return err
		}
		buf.Write(line)
		buf.WriteByte('\n')
		added = append(added, k)
	}
	if buf.Len() == 0 {
		return nil
	}
	err := q.locked(func() error { return appendSynced(q.records, buf.Bytes()) })
	if err != nil {
		return err
	}
	for _, k := range added {
		q.keys[k] = true
	}
	return nil
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// appendSynced appends b to the file at path, after a line end if the file
// ends without one (a write cut short), and syncs it (and, when it made the
// file, the directory).
func appendSynced(path string, b []byte) error {
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("dead-letter queue: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			b = append([]byte{'\n'}, b...)
		}
	}
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("dead-letter queue: writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("dead-letter queue: syncing %s: %w", path, err)
	}
	if errors.Is(statErr, os.ErrNotExist) {
		return syncDir(filepath.Dir(path))
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) { // some systems cannot sync a directory
		return fmt.Errorf("dead-letter queue: syncing %s: %w", dir, err)
	}
	return nil
}

// read returns the records, without the removed ones when live, and the
// lines that do not parse. The lock is held.
func (q *fileDLQ) read(live bool) (records []DeadLetter, bad [][]byte, err error) {
	removed := map[string]bool{}
	if live {
		err := eachLine(q.removedFile, func(line []byte) error {
			removed[string(line)] = true
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	err = eachLine(q.records, func(line []byte) error {
		var dl DeadLetter
		if json.Unmarshal(line, &dl) != nil {
			bad = append(bad, bytes.Clone(line))
			return nil
		}
		if !removed[dl.key()] {
			records = append(records, dl)
		}
		return nil
	})
	return records, bad, err
}

// eachLine calls fn with each non-empty line of the file at path; a file
// that is not there has none.
func eachLine(path string, fn func([]byte) error) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dead-letter queue: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if line = bytes.TrimSuffix(line, []byte{'\n'}); len(line) > 0 {
			if err := fn(line); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("dead-letter queue: reading %s: %w", path, err)
		}
	}
}

// list returns the records not removed, oldest first, and how many lines
// do not parse.
func (q *fileDLQ) list(context.Context) (records []DeadLetter, bad int, err error) {
	err = q.locked(func() error {
		var b [][]byte
		records, b, err = q.read(true)
		bad = len(b)
		return err
	})
	return records, bad, err
}

// remove records that dls were replayed: they are not listed or replayed
// again.
func (q *fileDLQ) remove(_ context.Context, dls []DeadLetter) error {
	if len(dls) == 0 {
		return nil
	}
	var buf bytes.Buffer
	for i := range dls {
		buf.WriteString(dls[i].key())
		buf.WriteByte('\n')
	}
	return q.locked(func() error { return appendSynced(q.removedFile, buf.Bytes()) })
}

// tidy rewrites the records without the removed ones, or deletes both
// files when nothing is left.
func (q *fileDLQ) tidy(context.Context) error {
	return q.locked(func() error {
		if _, err := os.Stat(q.removedFile); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		records, bad, err := q.read(true)
		if err != nil {
			return err
		}
		if len(records) == 0 && len(bad) == 0 {
			if err := os.Remove(q.records); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			if err := os.Remove(q.removedFile); err != nil {
				return err
			}
			return syncDir(q.dir)
		}
		var buf bytes.Buffer
		for _, line := range bad {
			buf.Write(line)
			buf.WriteByte('\n')
		}
		for i := range records {
			line, err := json.Marshal(&records[i])
			if err != nil {
				return err
			}
			buf.Write(line)
			buf.WriteByte('\n')
		}
		tmp := q.records + ".tmp"
		if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
			return err
		}
		f, err := os.Open(tmp)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
		if err := os.Rename(tmp, q.records); err != nil {
			return err
		}
		if err := syncDir(q.dir); err != nil {
			return err
		}
		// Only once the records no longer hold them: a crash before this
		// leaves removals of records already gone, which is harmless.
		return os.Remove(q.removedFile)
	})
}

// stats counts the records waiting and finds the oldest's time, reading
// the files again only when they changed.
func (q *fileDLQ) stats() (waiting int, oldest time.Time, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	sig := [2]fileSig{statSig(q.records), statSig(q.removedFile)}
	if sig == q.cache.sig && !q.cache.sig[0].mod.IsZero() {
		return q.cache.waiting, q.cache.oldest, nil
	}
	records, _, err := q.list(context.Background())
	if err != nil {
		return 0, time.Time{}, err
	}
	c := fileDLQStats{sig: sig, waiting: len(records)}
	for i := range records {
		if c.oldest.IsZero() || records[i].Time.Before(c.oldest) {
			c.oldest = records[i].Time
		}
	}
	q.cache = c
	return c.waiting, c.oldest, nil
}

func statSig(path string) fileSig {
	st, err := os.Stat(path)
	if err != nil {
		return fileSig{mod: time.Unix(1, 0)} // not there: a signature of its own
	}
	return fileSig{size: st.Size(), mod: st.ModTime()}
}
