package tcp

// Cut breaks the link's current connection as a network fault would: the
// socket closes under both goroutines. Tests only.
func (l *Link) Cut() {
	l.mu.Lock()
	c := l.cur
	l.mu.Unlock()
	if c != nil {
		c.nc.Close()
	}
}

// CutStream cuts the connection of every open link of stream the carrier
// made. Tests only.
func (c *Carrier) CutStream(stream string) {
	for _, l := range c.links.All() {
		if l.stream == stream {
			l.Cut()
		}
	}
}
