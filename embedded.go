package riffle

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EmbeddedBroker is an in-process Kafka broker: franz-go's kfake. It lets a
// program or a test run an App with no Kafka installed. It keeps data in
// memory and is gone when closed; it is for examples and tests, not for
// production.
type EmbeddedBroker struct {
	c *kfake.Cluster
}

// StartEmbeddedBroker starts an in-process broker on a free loopback port.
func StartEmbeddedBroker() (*EmbeddedBroker, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return nil, fmt.Errorf("riffle: start the embedded broker: %w", err)
	}
	return &EmbeddedBroker{c: c}, nil
}

// Addrs returns the broker's address, for BootstrapServers.
func (b *EmbeddedBroker) Addrs() []string { return b.c.ListenAddrs() }

// CreateTopics creates topics with the given number of partitions.
func (b *EmbeddedBroker) CreateTopics(ctx context.Context, partitions int32, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...))
	if err != nil {
		return err
	}
	defer cl.Close()
	resps, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, nil, topics...)
	if err != nil {
		return fmt.Errorf("riffle: create topics %v: %w", topics, err)
	}
	for _, r := range resps.Sorted() {
		if r.Err != nil {
			return fmt.Errorf("riffle: create topic %q: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// Close stops the broker.
func (b *EmbeddedBroker) Close() { b.c.Close() }
