package linkset_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/bridge-mq/bridge/adapters/internal/linkset"
	"github.com/bridge-mq/bridge/delivery"
)

type link struct {
	stream string
	st     delivery.LinkStatus
}

func (l *link) Status() delivery.LinkStatus { return l.st }
func (l *link) Stream() string              { return l.stream }
func (l *link) End() delivery.End           { return delivery.ConsumerEnd }

func TestStatusSumsTheLinks(t *testing.T) {
	var s linkset.Set[*link]
	s.Carrier = "test"
	if st := s.Status(nil); !st.Connected || st.Reconnects != 0 || st.Err != nil {
		t.Errorf("an empty set: %+v; want connected", st)
	}
	up := &link{stream: "a", st: delivery.LinkStatus{Connected: true, Reconnects: 2}}
	down := &link{stream: "b", st: delivery.LinkStatus{Reconnects: 3, Err: errors.New("reset")}}
	s.Add(up)
	s.Add(down)
	st := s.Status(nil)
	if st.Connected || st.Reconnects != 5 || st.Err == nil || !strings.Contains(st.Err.Error(), `test: the consumer end of stream "b" is down: reset`) {
		t.Errorf("one link down: %+v", st)
	}
	s.Remove(down)
	if st := s.Status(nil); !st.Connected || st.Reconnects != 5 || st.Err != nil {
		t.Errorf("the link down removed: %+v; want connected, its reconnects still counted", st)
	}
	s.Remove(down) // twice: counted once
	closedErr := errors.New("closed")
	if links := s.Close(); len(links) != 1 || links[0] != up {
		t.Errorf("Close returned %v; want the open link", links)
	}
	if links := s.Close(); links != nil {
		t.Errorf("a second Close returned %v", links)
	}
	if s.Add(&link{}) {
		t.Error("Add after Close reported true")
	}
	if st := s.Status(closedErr); st.Connected || st.Reconnects != 5 || st.Err != closedErr {
		t.Errorf("after Close: %+v", st)
	}
}
