package kafka

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/bridge-mq/bridge/delivery/backoff"
	kafkago "github.com/segmentio/kafka-go"
)

// ensureTopics creates the stream's two topics, one partition each, if they
// are missing. A broker that refuses to create them (no ACL for it, a
// creation policy) is fine as long as they exist.
func (l *Link) ensureTopics(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.RequestTimeout)
	defer cancel()
	topics := []string{l.dataTopic, l.controlTopic}
	req := &kafkago.CreateTopicsRequest{}
	for _, t := range topics {
		req.Topics = append(req.Topics, kafkago.TopicConfig{Topic: t, NumPartitions: 1, ReplicationFactor: l.cfg.ReplicationFactor})
	}
	res, err := l.client.CreateTopics(ctx, req)
	if err != nil {
		return &TopicError{Topic: l.dataTopic, Err: err}
	}
	for _, t := range topics {
		err := res.Errors[t]
		switch {
		case err == nil:
			l.log.Debug("kafka: topic created", "topic", t)
		case errors.Is(err, kafkago.TopicAlreadyExists):
		default:
			if l.topicExists(ctx, t) {
				continue
			}
			return &TopicError{Topic: t, Err: err}
		}
	}
	return nil
}

func (l *Link) topicExists(ctx context.Context, topic string) bool {
	res, err := l.client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return false
	}
	for _, t := range res.Topics {
		if t.Name == topic && t.Error == nil && len(t.Partitions) > 0 {
			return true
		}
	}
	return false
}

// maxMessageBytes returns the largest record batch both topics take:
// Config.MaxMessageBytes, lowered to a topic's max.message.bytes when the
// broker reports a lower one. A broker that does not say (no ACL to describe
// configs) leaves Config.MaxMessageBytes.
func (l *Link) maxMessageBytes(ctx context.Context) int {
	limit := l.cfg.MaxMessageBytes
	ctx, cancel := context.WithTimeout(ctx, l.cfg.RequestTimeout)
	defer cancel()
	req := &kafkago.DescribeConfigsRequest{}
	for _, t := range []string{l.dataTopic, l.controlTopic} {
		req.Resources = append(req.Resources, kafkago.DescribeConfigRequestResource{
			ResourceType: kafkago.ResourceTypeTopic, ResourceName: t, ConfigNames: []string{"max.message.bytes"},
		})
	}
	res, err := l.client.DescribeConfigs(ctx, req)
	if err != nil {
		l.log.Debug("kafka: cannot read the topics' max.message.bytes; using Config.MaxMessageBytes", "err", err, "max_message_bytes", limit)
		return limit
	}
	for _, r := range res.Resources {
		for _, e := range r.ConfigEntries {
			if e.ConfigName != "max.message.bytes" {
				continue
			}
			if n, err := strconv.Atoi(e.ConfigValue); err == nil && n >= minMaxMessageBytes && n < limit {
				l.log.Info("kafka: the topic takes smaller messages than Config.MaxMessageBytes; frames are limited to fit",
					"topic", r.ResourceName, "max.message.bytes", n)
				limit = n
			}
		}
	}
	return limit
}

// committedOffset returns the consumer end's committed offset in the data
// topic, or -1 if the group has none.
func (l *Link) committedOffset(ctx context.Context) (int64, error) {
	offset := int64(-1)
	err := l.retry(ctx, func(ctx context.Context) error {
		res, err := l.client.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{
			GroupID: l.group,
			Topics:  map[string][]int{l.dataTopic: {0}},
		})
		if err != nil {
			return err
		}
		if res.Error != nil {
			if errors.Is(res.Error, kafkago.GroupIdNotFound) {
				return nil // no commit yet
			}
			return res.Error
		}
		for _, p := range res.Topics[l.dataTopic] {
			if p.Partition == 0 {
				if p.Error != nil {
					return p.Error
				}
				offset = p.CommittedOffset
			}
		}
		return nil
	})
	return offset, err
}

// endOffset returns the offset the next record of topic will get.
func (l *Link) endOffset(ctx context.Context, topic string) (int64, error) {
	var offset int64
	err := l.retry(ctx, func(ctx context.Context) error {
		res, err := l.client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{
			Topics: map[string][]kafkago.OffsetRequest{topic: {kafkago.LastOffsetOf(0)}},
		})
		if err != nil {
			return err
		}
		for _, p := range res.Topics[topic] {
			if p.Partition == 0 {
				if p.Error != nil {
					return p.Error
				}
				offset = p.LastOffset
				return nil
			}
		}
		return &TopicError{Topic: topic, Err: errors.New("no partition 0 in the broker's answer")}
	})
	return offset, err
}

// retry runs fn until it succeeds, fails for good, or RequestTimeout has
// passed. A topic just created may briefly have no leader; a group
// coordinator may be loading: such errors are temporary.
func (l *Link) retry(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.RequestTimeout)
	defer cancel()
	// Up to a second between attempts: RequestTimeout bounds them all.
	wait := backoff.New(backoff.Policy{Min: firstRetryBackoff, Max: time.Second})
	for {
		err := fn(ctx)
		if err == nil {
			return nil
		}
		var kerr kafkago.Error
		if !(errors.As(err, &kerr) && kerr.Temporary()) && !topicMissing(err) || ctx.Err() != nil {
			return err
		}
		if !backoff.Sleep(ctx, wait.Next()) {
			return err
		}
	}
}
