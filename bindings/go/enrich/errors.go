package enrich

// #include <enrich.h>
import "C"

import "errors"

// ErrorCode is an enr_err_t of enrich.h, and an error itself:
//
//	if errors.Is(err, enrich.ErrFenced) { ... }
type ErrorCode int

// The codes of enrich.h, same numbers (the tests check each against enr_err2name()).
const (
	ErrInvalidArg    ErrorCode = -1  // a malformed argument
	ErrConfUnknown   ErrorCode = -2  // unknown configuration key
	ErrConfInvalid   ErrorCode = -3  // bad configuration value
	ErrNoMem         ErrorCode = -4  // out of memory
	ErrStage         ErrorCode = -5  // a stage failed to start or is unknown
	ErrDecode        ErrorCode = -6  // an input record is not a valid event
	ErrSchema        ErrorCode = -7  // the event's schema version is newer than supported
	ErrTooLarge      ErrorCode = -8  // an input record exceeds input.max.bytes
	ErrTimedOut      ErrorCode = -9  // a deadline passed
	ErrTransport     ErrorCode = -10 // the Kafka clients could not be created
	ErrRecursiveCall ErrorCode = -11 // called from inside a stage or transaction callback
	ErrStopped       ErrorCode = -12 // the processor was stopped
	ErrFenced        ErrorCode = -13 // another instance took over the transactional id
	ErrKafka         ErrorCode = 1   // a Kafka error
	ErrKafkaFatal    ErrorCode = -14 // a fatal Kafka error other than fencing: the processor stopped
	ErrSelfFenced    ErrorCode = -15 // fenced by its own rejoin after a session timeout: start a new one
)

// ErrClosed is returned by every call on a closed (or nil) Processor.
var ErrClosed = errors.New("enrich: the processor is closed")

// Error returns the library's description of the code (enr_err2str).
func (c ErrorCode) Error() string { return C.GoString(C.enr_err2str(C.enr_err_t(c))) }

// String returns the symbolic name, e.g. "ENR_ERR_FENCED" (enr_err2name).
func (c ErrorCode) String() string { return C.GoString(C.enr_err2name(C.enr_err_t(c))) }

// Error is a failed call: the C code, its name and what failed.
// errors.Is(err, ErrFenced) and errors.As(err, &e) both work.
type Error struct {
	// Code is the C error code; 0 only when NewProcessor fails in enr_processor_new(),
	// which gives a reason but no code.
	Code    ErrorCode
	Name    string // Code.String(), "" when Code is 0
	Message string // what failed, in words
}

func (e *Error) Error() string {
	if e.Code == 0 {
		return "enrich: " + e.Message
	}
	return "enrich: " + e.Message + " (" + e.Name + ")"
}

// Unwrap returns the code, so that errors.Is(err, ErrStopped) works.
func (e *Error) Unwrap() error {
	if e.Code == 0 {
		return nil
	}
	return e.Code
}

// newError is the *Error for code rc: what failed, then the library's description.
func newError(rc C.int, what string) *Error {
	code := ErrorCode(rc)
	return &Error{Code: code, Name: code.String(), Message: what + ": " + code.Error()}
}
