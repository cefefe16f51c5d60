package bridge

// BenchConfig configures `bridge bench`, from BRIDGE_BENCH_* variables.
type BenchConfig struct {
	Transports []string `envconfig:"TRANSPORTS" desc:"bench: carriers to compare (default: tcp and the embedded nats, plus amqp and kafka when their URL or brokers are set)"`
	Count      int      `envconfig:"COUNT" default:"100000" desc:"bench: messages per run"`
	Size       []int    `envconfig:"SIZE" default:"128" desc:"bench: bytes per message; a comma-separated list runs each size"`
	Window     int      `envconfig:"WINDOW" default:"1000" desc:"bench: the consumer's window in reliable runs"`
	Rate       float64  `envconfig:"RATE" desc:"bench: messages per second (default 0: as fast as possible; a fixed rate for latency runs)"`
	Durable    bool     `envconfig:"DURABLE" desc:"bench: also run reliable delivery with the durable producer queue"`
	Format     string   `envconfig:"FORMAT" default:"table" desc:"bench: output, table or json"`
	Report     string   `envconfig:"REPORT" desc:"bench: also write a self-contained HTML report with charts to this file"`
}
