package nats

// Test hooks, compiled into the package's tests only.

// CutStream breaks the connections of the carrier's links of stream: the
// client drops its socket and reconnects, as after a network fault.
func (c *Carrier) CutStream(stream string) {
	c.mu.Lock()
	var links []*Link
	for key, l := range c.links {
		if key.stream == stream {
			links = append(links, l)
		}
	}
	c.mu.Unlock()
	for _, l := range links {
		_ = l.conn.nc.ForceReconnect()
	}
}

// Abandon drops the link as a crashed process would: its connection goes
// without naking or acking what it holds, so the server delivers those
// frames again only after AckWait.
func (l *Link) Abandon() {
	l.closeOnce.Do(func() {
		if l.cons != nil {
			l.cons.mu.Lock()
			l.cons.swept = true // nak nothing, even what still arrives
			clear(l.cons.held)
			l.cons.mu.Unlock()
		}
		l.conn.closing.Store(true)
		l.conn.nc.Close()
		close(l.closed)
		l.endLife()
		if l.cons != nil {
			l.cons.wg.Wait()
		}
		if l.pub != nil {
			l.pub.stop()
		}
		l.carrier.forget(l)
	})
}

// PendingPublishes is how many JetStream publishes await their ack.
func (l *Link) PendingPublishes() int {
	if l.pub == nil {
		return 0
	}
	l.pub.mu.Lock()
	defer l.pub.mu.Unlock()
	return l.pub.frames
}
