package kafka

import "testing"

func TestReleaseTrackerCommitsContiguousReleases(t *testing.T) {
	tr := newReleaseTracker()
	// Offsets with a hole (41 is missing, as a transaction marker would
	// leave), released out of order.
	offsets := []int64{38, 39, 40, 42, 43}
	releases := make([]func(), len(offsets))
	for i, o := range offsets {
		releases[i] = tr.add(o)
	}
	check := func(want int64) {
		t.Helper()
		if got, _ := tr.committable(); got != want {
			t.Fatalf("committable offset %d; want %d", got, want)
		}
	}
	check(-1)
	releases[1]() // 39: 38 still held
	check(-1)
	releases[0]() // 38, 39
	check(40)
	releases[3]() // 42: 40 still held
	check(40)
	releases[3]() // a second call changes nothing
	releases[2]() // 40, 42 (41 does not exist)
	check(43)
	releases[4]()
	check(44)
	select {
	case <-tr.signal:
	default:
		t.Fatal("no signal after the commit offset advanced")
	}
}

func TestReleaseTrackerResetIgnoresOldFrames(t *testing.T) {
	tr := newReleaseTracker()
	old := tr.add(100)
	tr.reset() // the log started over
	if got, _ := tr.committable(); got != -1 {
		t.Fatalf("committable offset %d after reset; want -1", got)
	}
	fresh := tr.add(0)
	old() // a frame of the lost log: ignored
	if got, _ := tr.committable(); got != -1 {
		t.Fatalf("committable offset %d after releasing a frame from before the reset; want -1", got)
	}
	fresh()
	if got, gen := tr.committable(); got != 1 || gen != 1 {
		t.Fatalf("committable offset %d in generation %d; want 1 in generation 1", got, gen)
	}
}
