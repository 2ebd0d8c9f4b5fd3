package llm

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits of sampling parameters (docs/api.md). Values outside them are
// refused, never clamped.
const (
	MaxTemperature   = 2.0
	MaxStopSequences = 4
	MaxStopChars     = 64
)

// ParamError names the parameter a CheckParams refusal is about.
type ParamError struct {
	Field   string // temperature, topP, maxTokens or stop
	Problem string
}

func (e *ParamError) Error() string { return e.Field + ": " + e.Problem }

// CheckParams validates sampling parameters; nil and empty ones are not
// set. maxOutput bounds maxTokens when positive.
func CheckParams(temperature, topP *float64, maxTokens *int, stop []string, maxOutput int) *ParamError {
	switch {
	case temperature != nil && !(*temperature >= 0 && *temperature <= MaxTemperature):
		return &ParamError{"temperature", fmt.Sprintf("must be from 0 to %g (got %g)", MaxTemperature, *temperature)}
	case topP != nil && !(*topP > 0 && *topP <= 1):
		return &ParamError{"topP", fmt.Sprintf("must be above 0 and at most 1 (got %g)", *topP)}
	case maxTokens != nil && *maxTokens < 1:
		return &ParamError{"maxTokens", fmt.Sprintf("must be at least 1 (got %d)", *maxTokens)}
	case maxTokens != nil && maxOutput > 0 && *maxTokens > maxOutput:
		return &ParamError{"maxTokens", fmt.Sprintf("must be at most %d for this model (got %d)", maxOutput, *maxTokens)}
	case len(stop) > MaxStopSequences:
		return &ParamError{"stop", fmt.Sprintf("at most %d sequences (got %d)", MaxStopSequences, len(stop))}
	}
	for i, s := range stop {
		if n := utf8.RuneCountInString(s); s == "" || n > MaxStopChars || !utf8.ValidString(s) {
			return &ParamError{"stop", fmt.Sprintf("sequence %d must be 1 to %d characters of valid UTF-8", i+1, MaxStopChars)}
		}
		// Upstreams written in C read a string up to its first NUL: "\x00"
		// would be an empty sequence there and "a\x00b" an "a", stopping
		// answers where nobody asked. Other control characters are kept:
		// "\n" and "\n\nUser:" are the usual stops.
		if strings.IndexByte(s, 0) >= 0 {
			return &ParamError{"stop", fmt.Sprintf("sequence %d must not contain NUL (U+0000)", i+1)}
		}
	}
	return nil
}
