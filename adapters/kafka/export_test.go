package kafka

// Test hooks for the package's external tests.

// RecordOverhead is what MaxFrameSize leaves below MaxMessageBytes.
const RecordOverhead = recordOverhead

// CutConnections closes every network connection of l at once, as a network
// failure would; kafka-go reconnects by itself.
func CutConnections(l *Link) { l.conns.cut() }

// CutStream cuts the connections of every open link of stream on c.
func CutStream(c *Carrier, stream string) {
	for _, l := range c.links.All() {
		if l.stream == stream {
			CutConnections(l)
		}
	}
}

// OffsetsRead returns the offsets of the first and the latest frame l handed
// to Receive (-1: none).
func OffsetsRead(l *Link) (first, last int64) {
	return l.receiver.firstOffset.Load(), l.receiver.lastOffset.Load()
}

// Topics returns the data and control topics and the group of l's stream.
func Topics(l *Link) (data, control, group string) { return l.dataTopic, l.controlTopic, l.group }

// LogRestarts returns how often l found its topic's log shorter than the
// offset it had reached, and read it again from the start.
func LogRestarts(l *Link) uint64 { return l.receiver.restarts.Load() }
