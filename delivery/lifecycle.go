package delivery

import "sync"

// lifecycle tracks whether a controller has run and lets Close and Shutdown
// reach a running one.
type lifecycle struct {
	mu       sync.Mutex
	state    int           // 0 new, 1 running, 2 stopped
	drain    chan struct{} // closed by Shutdown
	quit     chan struct{} // closed by Close
	done     chan struct{} // closed when Run returns
	drainReq bool
	quitReq  bool
}

func newLifecycle() lifecycle {
	return lifecycle{drain: make(chan struct{}), quit: make(chan struct{}), done: make(chan struct{})}
}

func (l *lifecycle) begin() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.state {
	case 1:
		return ErrAlreadyRunning
	case 2:
		return ErrClosed
	}
	l.state = 1
	return nil
}

func (l *lifecycle) end(error) {
	l.mu.Lock()
	l.state = 2
	l.mu.Unlock()
	close(l.done)
}

// requestDrain asks the controller to stop gracefully, now if it runs or as
// soon as Run is called. It reports false when the controller has stopped.
func (l *lifecycle) requestDrain() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state == 2 {
		return false
	}
	if !l.drainReq {
		l.drainReq = true
		close(l.drain)
	}
	return true
}

// stop asks the controller to stop now and waits until it has. It reports
// true when the controller never ran, so the caller cleans up in its place.
func (l *lifecycle) stop() (neverRan bool) {
	l.mu.Lock()
	state := l.state
	if !l.quitReq {
		l.quitReq = true
		close(l.quit)
	}
	if state == 0 {
		l.state = 2
		close(l.done)
	}
	l.mu.Unlock()
	if state == 0 {
		return true
	}
	<-l.done
	return false
}
