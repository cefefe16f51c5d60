package delivery

// TrySendAllWithConfirmation takes every message of msgs or none of them,
// as ProducerController.TrySendAllWithConfirmation does: the whole batch
// goes to one worker whose window takes it all, numbered one after the
// other, and a Confirmation is returned for each, in order. With no such
// worker it returns ErrNoDemand and takes nothing; a message larger than
// MaxMessageSize (or than every worker with room takes) gives a
// *MessageTooLargeError, a *MarshalError likewise; ErrClosed once the
// controller is stopping.
func (w *WorkPullingProducerController[T]) TrySendAllWithConfirmation(msgs []T) ([]*Confirmation, error) {
	out := make([]Outgoing[T], len(msgs))
	for i, msg := range msgs {
		out[i] = Outgoing[T]{Message: msg}
	}
	return w.TrySendAllMessages(out)
}

// TrySendAllMessages is TrySendAllWithConfirmation with each message's
// headers, as ProducerController.TrySendAllMessages is; headers past the
// limits make it return a *HeaderError and take nothing.
func (w *WorkPullingProducerController[T]) TrySendAllMessages(msgs []Outgoing[T]) ([]*Confirmation, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	ms := make([]*wpMsg, len(msgs))
	for i, o := range msgs {
		m, err := w.newMsg(o)
		if err != nil {
			return nil, err
		}
		ms[i] = m
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return nil, w.err
	}
	if !w.ready || len(w.requeue) > 0 {
		return nil, ErrNoDemand
	}
	var tooLarge error
	for _, wk := range w.workers {
		if wk.gone || wk.p.intake.demandNow() < SeqNr(len(ms)) {
			continue
		}
		batch := make([]accepted, len(ms))
		for i, m := range ms {
			a, err := wk.p.prepare(m.payload, m.headers)
			if err != nil {
				return nil, err
			}
			batch[i] = a
		}
		cs, err := wk.p.intake.offerAll(batch)
		if err != nil {
			if _, ok := err.(*MessageTooLargeError); ok {
				tooLarge = err
			}
			continue
		}
		replies := make([]*Confirmation, len(ms))
		for i, m := range ms {
			m.inner, m.worker, m.sends = cs[i], wk, 1
			wk.inflight = append(wk.inflight, m)
			wk.handedOut++
			w.takeLocked(m, true)
			replies[i] = m.reply
		}
		select {
		case wk.sig <- struct{}{}:
		default:
		}
		return replies, nil
	}
	if tooLarge != nil {
		return nil, tooLarge
	}
	return nil, ErrNoDemand
}
