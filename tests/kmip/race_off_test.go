//go:build !race

package kmip_test

const raceEnabled = false
