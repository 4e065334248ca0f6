package qemuimg

import (
	"reflect"
	"testing"
)

func TestProgressWriterSplitsAcrossWrites(t *testing.T) {
	var got []float64
	p := &progressWriter{report: func(v float64) { got = append(got, v) }}
	for _, chunk := range []string{"    (0.00/100%)\r", "    (1.0", "1/100%)\r    (1.01/100%)\r", "    (100.00/100%)\n", "junk\n"} {
		p.Write([]byte(chunk))
	}
	if want := []float64{0, 1.01, 100}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
