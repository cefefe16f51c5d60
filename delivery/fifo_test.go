package delivery

import "testing"

func TestFIFOKeepsOrderAndReusesStorage(t *testing.T) {
	var q fifo[int]
	next, want := 0, 0
	for round := 0; round < 1000; round++ {
		for range 7 {
			q.push(next)
			next++
		}
		n := 5
		if round%3 == 0 {
			n = 9
		}
		n = min(n, q.len())
		for i := range n {
			if got := q.at(i); got != want+i {
				t.Fatalf("round %d: at(%d) = %d, want %d", round, i, got, want+i)
			}
		}
		q.drop(n)
		want += n
	}
	if q.len() != next-want {
		t.Fatalf("len %d, want %d", q.len(), next-want)
	}
	if live := q.live(); len(live) > 0 && live[0] != want {
		t.Fatalf("front %d, want %d", live[0], want)
	}
	// The queue stays about as long as it grows per round: storage stays
	// within a small multiple of that, not of everything ever pushed.
	if c := cap(q.items); c > 4*(q.len()+16) {
		t.Fatalf("storage of %d entries for %d live", c, q.len())
	}
	allocs := testing.AllocsPerRun(100, func() {
		for range 10 {
			q.push(1)
		}
		q.drop(10)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per steady-state round", allocs)
	}
	q.reset()
	if q.len() != 0 {
		t.Fatal("not empty after reset")
	}
}
