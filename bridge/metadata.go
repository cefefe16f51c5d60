package bridge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/bridge-mq/bridge/delivery"
)

// The service carries a message's metadata between HTTP and the protocol's
// headers: the HTTP source keeps a request's Content-Type, traceparent,
// tracestate and every Bridge-Meta-* header as the message's headers
// (names in lower case), and the webhook sends them back as the same HTTP
// headers. Other headers a library producer may have given a message are
// kept with it (and in a dead letter), but not sent as HTTP headers.
const metaPrefix = "bridge-meta-"

// carried reports whether a header (its name in lower case) is one the
// service maps to HTTP and back.
func carried(name string) bool {
	switch name {
	case "content-type", "traceparent", "tracestate":
		return true
	}
	return len(name) > len(metaPrefix) && strings.HasPrefix(name, metaPrefix) && httpToken(name)
}

// httpToken reports whether s is a valid HTTP header name (RFC 9110 token):
// what a webhook request can carry.
func httpToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

// requestHeaders returns the carried headers of an HTTP request, for its
// message; without withType, not its Content-Type (an NDJSON request's
// type is not its lines'). nil when there are none. A header given more
// than once keeps its first value.
func requestHeaders(h http.Header, withType bool) delivery.Headers {
	var out delivery.Headers
	for name, values := range h {
		lower := strings.ToLower(name)
		if len(values) == 0 || !carried(lower) || lower == "content-type" && !withType {
			continue
		}
		out = append(out, delivery.Header{Name: lower, Value: values[0]})
	}
	if len(out) > 1 {
		slices.SortFunc(out, func(a, b delivery.Header) int { return strings.Compare(a.Name, b.Name) })
	}
	return out
}

// setRequestHeaders sets a webhook request's headers from a message's
// carried ones; Content-Type is the message's, or application/octet-stream.
func setRequestHeaders(h http.Header, hs delivery.Headers) {
	h.Set("Content-Type", "application/octet-stream")
	for _, x := range hs {
		if carried(x.Name) {
			h.Set(x.Name, x.Value)
		}
	}
}

// Lines with metadata. An application/x-ndjson body's lines are messages
// as they are, unless its Content-Type says
// "application/x-ndjson; bridge-lines=envelope": then each line is a JSON
// object, an envelope,
//
//	{"headers": {"bridge-meta-tenant": "a", "traceparent": "00-..."}, "body": {"any": "JSON"}}
//	{"body_base64": "AAEC"}
//
// whose "body" is the message, as the JSON text given (a plain line
// wrapped), or whose "body_base64" is (for bytes that are not JSON); one
// of the two, and "headers" optional, names in any case, among those the
// service carries (content-type, traceparent, tracestate, bridge-meta-*).
// The request's own traceparent, tracestate and Bridge-Meta-* headers go
// with every line, a line's own headers before them. A batched webhook
// uses the same form, for a request any of whose messages has headers.
const (
	linesParam    = "bridge-lines"
	linesEnvelope = "envelope"
	envelopeType  = "application/x-ndjson; " + linesParam + "=" + linesEnvelope
)

// envelope is one line of the envelope form, as read.
type envelope struct {
	Headers    map[string]string `json:"headers,omitempty"`
	Body       json.RawMessage   `json:"body"`
	BodyBase64 *[]byte           `json:"body_base64"`
}

// ndjsonForm reports whether a Content-Type is application/x-ndjson, and
// whether its lines are envelopes; a bridge-lines parameter of another
// value is an error.
func ndjsonForm(contentType string) (ndjson, envelopes bool, err error) {
	mt, params, perr := mime.ParseMediaType(contentType)
	if perr != nil || mt != "application/x-ndjson" {
		return false, false, nil
	}
	switch v, ok := params[linesParam]; {
	case !ok:
		return true, false, nil
	case v == linesEnvelope:
		return true, true, nil
	default:
		return true, false, fmt.Errorf("Content-Type parameter %s=%q: the only form is %s=%s", linesParam, v, linesParam, linesEnvelope)
	}
}

// openEnvelope reads one line of the envelope form: the message and its
// headers (base, the request's, after the line's own).
func openEnvelope(line []byte, base delivery.Headers) ([]byte, delivery.Headers, error) {
	var e envelope
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, nil, fmt.Errorf("not an envelope (a JSON object of headers, body or body_base64): %v", err)
	}
	if dec.More() {
		return nil, nil, fmt.Errorf("more than one JSON value on the line")
	}
	if (e.Body == nil) == (e.BodyBase64 == nil) {
		return nil, nil, fmt.Errorf("an envelope has one of body and body_base64")
	}
	msg := []byte(e.Body)
	if e.Body == nil {
		msg = *e.BodyBase64
	}
	var hs delivery.Headers
	for name, value := range e.Headers {
		lower := strings.ToLower(name)
		if !carried(lower) {
			return nil, nil, fmt.Errorf("header %q: the service carries content-type, traceparent, tracestate and bridge-meta-* only", name)
		}
		hs = append(hs, delivery.Header{Name: lower, Value: value})
	}
	slices.SortFunc(hs, func(a, b delivery.Header) int { return strings.Compare(a.Name, b.Name) })
	for _, x := range base {
		if _, ok := hs.Get(x.Name); !ok {
			hs = append(hs, x)
		}
	}
	return msg, hs, nil
}

// appendEnvelope appends msg and its carried headers as a line of the
// envelope form, its line end included. A message that is JSON goes in
// "body" byte for byte (not re-encoded); msg holds no line end.
func appendEnvelope(dst []byte, msg []byte, hs delivery.Headers) []byte {
	var headers map[string]string
	for _, x := range hs {
		if carried(x.Name) {
			if headers == nil {
				headers = make(map[string]string, len(hs))
			}
			headers[x.Name] = x.Value
		}
	}
	dst = append(dst, '{')
	if headers != nil {
		b, _ := json.Marshal(headers) // strings: it cannot fail
		dst = append(append(append(dst, `"headers":`...), b...), ',')
	}
	if json.Valid(msg) {
		dst = append(append(dst, `"body":`...), msg...)
	} else {
		if msg == nil {
			msg = []byte{} // "", not null
		}
		b, _ := json.Marshal(msg) // bytes: base64
		dst = append(append(dst, `"body_base64":`...), b...)
	}
	return append(dst, '}', '\n')
}

// ndjsonBody appends n messages (msg gives each, and its headers) to dst
// as an NDJSON body, and returns it with its Content-Type: plain lines, or,
// when any of them has metadata, lines in the envelope form. No message
// holds a line end (see plain).
func ndjsonBody(dst []byte, n int, msg func(i int) ([]byte, delivery.Headers)) ([]byte, string) {
	envelopes := false
	for i := 0; i < n && !envelopes; i++ {
		_, hs := msg(i)
		envelopes = slices.ContainsFunc(hs, func(h delivery.Header) bool { return carried(h.Name) })
	}
	for i := range n {
		m, hs := msg(i)
		if envelopes {
			dst = appendEnvelope(dst, m, hs)
		} else {
			dst = append(append(dst, m...), '\n')
		}
	}
	if envelopes {
		return dst, envelopeType
	}
	return dst, "application/x-ndjson"
}
