package linkset

import "github.com/bridge-mq/bridge/delivery"

// Opened turns the results of a carrier's own Link into those of its
// OpenLink: l as a delivery.Link, or with an error a nil delivery.Link,
// rather than one holding a nil *Link, which does not compare equal to
// nil. Use it as return linkset.Opened(c.Link(ctx, stream, end)).
func Opened[L delivery.Link](l L, err error) (delivery.Link, error) {
	if err != nil {
		return nil, err
	}
	return l, nil
}
