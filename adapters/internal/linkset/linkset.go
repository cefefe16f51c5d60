// Package linkset is what the carriers of adapters/ share about the links
// they open. A Set keeps the links of a carrier that has no connection of
// its own (tcp, kafka): its Close closes them all, and its Status is
// theirs, summed. Opened makes a carrier's OpenLink of its Link.
package linkset

import (
	"fmt"
	"sync"

	"github.com/bridge-mq/bridge/delivery"
)

// Link is what a Set holds: a carrier's concrete link type.
type Link interface {
	comparable
	delivery.StatusReporter
	Stream() string
	End() delivery.End
}

// Set is the open links of one carrier. Its zero value is an empty, open
// set. Safe for concurrent use.
type Set[L Link] struct {
	// Carrier prefixes the errors Status reports: "tcp", "kafka".
	Carrier string

	mu      sync.Mutex
	links   map[L]struct{}
	closed  bool
	retired uint64 // the reconnects of the links removed
}

// Add records l and reports true, or reports false once the set is closed
// (the caller then closes l itself).
func (s *Set[L]) Add(l L) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.links == nil {
		s.links = map[L]struct{}{}
	}
	s.links[l] = struct{}{}
	return true
}

// Remove forgets l, a link that closed. Its reconnects still count in
// Status, which keeps the carrier's count from going down.
func (s *Set[L]) Remove(l L) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.links[l]; ok {
		delete(s.links, l)
		s.retired += l.Status().Reconnects
	}
}

// All returns the links open now.
func (s *Set[L]) All() []L {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := make([]L, 0, len(s.links))
	for l := range s.links {
		all = append(all, l)
	}
	return all
}

// Close closes the set to Add and returns the links open now, for the
// carrier to close; nil if the set was closed already.
func (s *Set[L]) Close() []L {
	s.mu.Lock()
	closed := s.closed
	s.closed = true
	s.mu.Unlock()
	if closed {
		return nil
	}
	return s.All()
}

// Closed reports whether Close was called.
func (s *Set[L]) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Status is the carrier's status from its links': connected while every
// open link is (so also with none open), the reconnects of every link it
// ever held, and while a link is down, that link's reason. Once the set is
// closed it reports not connected, with closedErr.
func (s *Set[L]) Status(closedErr error) delivery.LinkStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := delivery.LinkStatus{Connected: !s.closed, Reconnects: s.retired}
	if s.closed {
		st.Err = closedErr
	}
	for l := range s.links {
		ls := l.Status()
		st.Reconnects += ls.Reconnects
		if ls.Connected || !st.Connected {
			continue
		}
		st.Connected = false
		if ls.Err != nil {
			st.Err = fmt.Errorf("%s: the %v end of stream %q is down: %w", s.Carrier, l.End(), l.Stream(), ls.Err)
		} else {
			st.Err = fmt.Errorf("%s: the %v end of stream %q is not connected yet", s.Carrier, l.End(), l.Stream())
		}
	}
	return st
}
