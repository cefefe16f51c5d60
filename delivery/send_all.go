package delivery

// TrySendAllWithConfirmation takes every message of msgs or none of them:
// when the controller asks for enough sequence numbers to take them all
// (chunks included) and the bytes it holds allow each one, they are
// numbered one after the other, with nothing of another sender's between
// them, and a Confirmation is returned for each, in order; otherwise it
// returns ErrNoDemand and takes nothing. A stream opening is the
// exception: when the controller asks for one message only and holds none
// (the first message of a lifetime goes before the consumer grants its
// window), the batch is taken whole and sent as the window allows, or a
// batch could never open the stream. A message larger than
// MaxMessageSize (or than the consumer takes) makes it return a
// *MessageTooLargeError and take nothing; a *MarshalError likewise. It
// returns ErrClosed once the controller is stopping.
//
// It is for a source that must answer for a batch as a whole, such as an
// HTTP request carrying many messages.
func (p *ProducerController[T]) TrySendAllWithConfirmation(msgs []T) ([]*Confirmation, error) {
	batch := make([]accepted, len(msgs))
	for i, msg := range msgs {
		a, err := p.prepare(msg, nil)
		if err != nil {
			return nil, err
		}
		batch[i] = a
	}
	return p.intake.offerAll(batch)
}

// TrySendAllMessages is TrySendAllWithConfirmation with each message's
// headers (each one's Confirm and NoWait are not looked at: every message
// gets a Confirmation, and none waits). Headers past the limits make it
// return a *HeaderError and take nothing.
func (p *ProducerController[T]) TrySendAllMessages(msgs []Outgoing[T]) ([]*Confirmation, error) {
	batch := make([]accepted, len(msgs))
	for i, m := range msgs {
		if err := checkHeaders(m.Headers); err != nil {
			return nil, err
		}
		a, err := p.prepare(m.Message, m.Headers)
		if err != nil {
			return nil, err
		}
		batch[i] = a
	}
	return p.intake.offerAll(batch)
}

// offerAll accepts every payload or none, under one hold of the lock: the
// sequence numbers they need are all within the limit, and the bytes held
// before each are under the bound (as offer would find them one by one).
func (in *intake) offerAll(batch []accepted) ([]*Confirmation, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	in.mu.Lock()
	if in.err != nil {
		in.mu.Unlock()
		return nil, in.err
	}
	need, bytes := 0, in.bytes
	for _, a := range batch {
		if len(a.payload) > in.maxMsg {
			limit := in.maxMsg
			in.mu.Unlock()
			return nil, &MessageTooLargeError{Size: len(a.payload), Limit: limit}
		}
		if bytes >= in.maxBytes {
			in.mu.Unlock()
			return nil, ErrNoDemand
		}
		need += a.chunks
		bytes += len(a.payload)
	}
	opening := in.next == in.limit && in.bytes == 0 && len(in.pending) == 0
	if in.next+SeqNr(need)-1 > in.limit && !opening {
		in.mu.Unlock()
		return nil, ErrNoDemand
	}
	replies := make([]*Confirmation, len(batch))
	wasEmpty := len(in.pending) == 0
	for i, a := range batch {
		a.first = in.next
		in.next = a.first + SeqNr(a.chunks)
		in.bytes += len(a.payload)
		a.reply = newConfirmation(in.next - 1)
		replies[i] = a.reply
		in.pending = append(in.pending, a)
	}
	in.mu.Unlock()
	if wasEmpty {
		select {
		case in.wake <- struct{}{}:
		default:
		}
	}
	return replies, nil
}
