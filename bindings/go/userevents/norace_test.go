//go:build !race

package userevents_test

const raceEnabled = false
