package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	kafkacarrier "github.com/bridge-mq/bridge/adapters/kafka"
	"github.com/bridge-mq/bridge/bridge/bench/report"
)

// kafkaGroupTimings are the consumer group's: a heartbeat a second, and a
// session of the service's BRIDGE_WORKER_TIMEOUT (so that both notice a
// silent worker as late), at least Kafka's default
// group.min.session.timeout.ms of 6 s, which the broker enforces.
const (
	kafkaGroupHeartbeat  = time.Second
	kafkaGroupMinSession = 6 * time.Second
	// kafkaGroupCommitEvery: offsets are committed this often rather than
	// one round trip per message, as a consumer at 1000 msgs/s must; a
	// killed consumer's last uncommitted ones come again.
	kafkaGroupCommitEvery = 100 * time.Millisecond
)

// kafkaGroup is Kafka's competing consumers: a consumer group of workers
// kafka-go group Readers on a topic of as many partitions, the range
// balancer giving each worker one; a Writer spreading messages over the
// partitions in turn, acks from all replicas. Order holds per partition,
// which is per key; a worker with one partition sees its messages in order.
// A killed worker's Reader is closed without committing what it handled
// since its last commit: those come again to the worker that takes its
// partition. kafka-go's Close leaves the group, so the rebalance starts at
// once; a SIGKILLed consumer would be noticed after the session timeout.
func kafkaGroup(admin *kafkago.Client, transport *kafkago.Transport, dialer *kafkago.Dialer, brokers []string, prefix string, session time.Duration, log *slog.Logger) *workMechanism {
	session = max(session, kafkaGroupMinSession)
	return &workMechanism{
		mode:     report.Competing,
		client:   fmt.Sprintf("kafka-go: a consumer group of Readers over a partition each (session %s, offsets committed every %s after handling); a Writer, RequireAll acks, round robin over the partitions", session, kafkaGroupCommitEvery),
		ordering: report.PerKey,
		strict:   true,
		open: func(ctx context.Context, stream string, workers int, tally *workTally) (*workPipe, error) {
			return kafkaGroupPipe(ctx, admin, transport, dialer, brokers, prefix+stream+".competing", workers, session, tally, log)
		},
	}
}

func kafkaGroupPipe(ctx context.Context, admin *kafkago.Client, transport *kafkago.Transport, dialer *kafkago.Dialer, brokers []string, topic string, workers int, session time.Duration, tally *workTally, log *slog.Logger) (*workPipe, error) {
	resp, err := admin.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{Topic: topic, NumPartitions: workers, ReplicationFactor: -1}}})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil && !errors.Is(err, kafkago.TopicAlreadyExists) {
		return nil, fmt.Errorf("competing kafka: creating topic %s: %w", topic, err)
	}
	p := &workPipe{failed: make(chan error, 1)}
	inFlight := newByteBudget(8 << 20)
	writer := &kafkago.Writer{
		Addr: kafkago.TCP(brokers...), Topic: topic, Balancer: &kafkago.RoundRobin{},
		RequiredAcks: kafkago.RequireAll, BatchTimeout: time.Millisecond, Async: true, Transport: transport,
		Completion: func(msgs []kafkago.Message, err error) {
			if err != nil {
				p.fail(fmt.Errorf("competing kafka write: %w", err))
			}
			for _, m := range msgs {
				inFlight.release(len(m.Value))
			}
		},
	}
	group := topic
	readCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	readers := make([]*kafkago.Reader, workers)
	var closeOnce []sync.Once = make([]sync.Once, workers)
	closeReader := func(k int) { closeOnce[k].Do(func() { readers[k].Close() }) }
	for k := range workers {
		readers[k] = kafkago.NewReader(kafkago.ReaderConfig{
			Brokers: brokers, Topic: topic, GroupID: group, Dialer: dialer,
			GroupBalancers:    []kafkago.GroupBalancer{kafkago.RangeGroupBalancer{}},
			StartOffset:       kafkago.FirstOffset, // a group with no offsets yet starts at the first message
			HeartbeatInterval: kafkaGroupHeartbeat, SessionTimeout: session, RebalanceTimeout: session,
			JoinGroupBackoff: 100 * time.Millisecond, CommitInterval: kafkaGroupCommitEvery,
			MaxWait: 100 * time.Millisecond, ReadLagInterval: -1,
			ReadBackoffMin: kafkacarrier.ReaderRedialBackoff, // as the carrier's Reader
		})
		r := readers[k]
		wg.Go(func() {
			for {
				m, err := r.FetchMessage(readCtx)
				if err != nil {
					if readCtx.Err() == nil && !tally.killed[k].Load() {
						p.fail(fmt.Errorf("competing kafka read: %w", err))
					}
					return
				}
				if !tally.work(k, m.Partition, m.Value) {
					return
				}
				if err := r.CommitMessages(readCtx, m); err != nil && readCtx.Err() == nil {
					p.fail(fmt.Errorf("competing kafka commit: %w", err))
					return
				}
			}
		})
	}
	p.send = func(ctx context.Context, msg []byte) error {
		if err := inFlight.acquire(ctx, len(msg)); err != nil {
			return err
		}
		return writer.WriteMessages(ctx, kafkago.Message{Value: msg})
	}
	p.flush = func(ctx context.Context) error { return inFlight.drained(ctx) }
	p.ready = func(ctx context.Context) error { return awaitGroup(ctx, admin, group, workers) }
	p.kill = func() { closeReader(0) }
	p.close = func() {
		writer.Close()
		stop()
		for k := range readers {
			closeReader(k)
		}
		wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := deleteTopics(ctx, admin, topic); err != nil {
			log.Warn("competing kafka: deleting the bench's topic", "err", err)
		}
	}
	return p, nil
}

// awaitGroup waits until group is stable with workers members, each
// assigned a partition: until then a message may wait for a rebalance,
// which is not what the pass measures. Kafka tells of no change in a
// group, so it asks every 50 ms.
func awaitGroup(ctx context.Context, admin *kafkago.Client, group string, workers int) error {
	for {
		resp, err := admin.DescribeGroups(ctx, &kafkago.DescribeGroupsRequest{GroupIDs: []string{group}})
		if err == nil && len(resp.Groups) == 1 {
			g := resp.Groups[0]
			assigned := 0
			for _, m := range g.Members {
				for _, t := range m.MemberAssignments.Topics {
					if len(t.Partitions) > 0 {
						assigned++
						break
					}
				}
			}
			if g.GroupState == "Stable" && len(g.Members) == workers && assigned == workers {
				return nil
			}
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("consumer group %s: %d workers not all assigned a partition: %w", group, workers, ctx.Err())
		}
	}
}
