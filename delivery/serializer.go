package delivery

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// Serializer turns messages of type T into payload bytes and back.
// Implementations must be safe for concurrent use: producers marshal from
// their own goroutines and consumers unmarshal from theirs.
type Serializer[T any] interface {
	Marshal(msg T) ([]byte, error)
	Unmarshal(payload []byte) (T, error)
}

// Bytes is the serializer for []byte messages, and the default when T is
// []byte. It copies nothing: a producer keeps the slice it was given until
// the message is confirmed, so the caller must not modify it after Send, and
// a consumer's message aliases the frame it arrived in.
type Bytes struct{}

func (Bytes) Marshal(msg []byte) ([]byte, error)       { return msg, nil }
func (Bytes) Unmarshal(payload []byte) ([]byte, error) { return payload, nil }

// String is the serializer for string messages.
type String struct{}

func (String) Marshal(msg string) ([]byte, error)       { return []byte(msg), nil }
func (String) Unmarshal(payload []byte) (string, error) { return string(payload), nil }

// JSON serializes any T with encoding/json.
type JSON[T any] struct{}

func (JSON[T]) Marshal(msg T) ([]byte, error) { return json.Marshal(msg) }
func (JSON[T]) Unmarshal(payload []byte) (T, error) {
	var v T
	err := json.Unmarshal(payload, &v)
	return v, err
}

// serializerFor returns s, or the default serializer for T when s is nil.
// Only []byte and string have defaults.
func serializerFor[T any](s Serializer[T]) (Serializer[T], error) {
	if s != nil {
		return s, nil
	}
	if d, ok := any(Bytes{}).(Serializer[T]); ok {
		return d, nil
	}
	if d, ok := any(String{}).(Serializer[T]); ok {
		return d, nil
	}
	var zero T
	return nil, &SettingError{Setting: "Serializer", Value: nil,
		Reason: fmt.Sprintf("required for message type %v (only []byte and string have a default)", reflect.TypeOf(&zero).Elem())}
}
