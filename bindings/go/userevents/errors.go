package userevents

// #include <userevents.h>
import "C"

// ErrorCode is a ue_err_t of userevents.h. It is an error itself, so the usual test is
//
//	if errors.Is(err, userevents.ErrQueueFull) { ... }
//
// Negative codes are local failures, positive ones come from the broker.
type ErrorCode int

// The codes of userevents.h, same numbers (the tests check each name with ue_err2name()).
const (
	ErrInvalidArg    ErrorCode = -1  // a malformed argument (event type, property, ...)
	ErrConfUnknown   ErrorCode = -2  // unknown configuration key
	ErrConfInvalid   ErrorCode = -3  // configuration value refused
	ErrNoMem         ErrorCode = -4  // out of memory
	ErrQueueFull     ErrorCode = -5  // in-memory queue full: the event was dropped (counted)
	ErrTimedOut      ErrorCode = -6  // a deadline passed first
	ErrSpool         ErrorCode = -7  // the disk spool could not be read or written
	ErrSpoolLocked   ErrorCode = -8  // another live process uses the spool directory
	ErrTransport     ErrorCode = -9  // the transport could not be created
	ErrForked        ErrorCode = -10 // the client was created in a parent process
	ErrRecursiveCall ErrorCode = -11 // called from inside one of the client's callbacks
	ErrEncode        ErrorCode = -12 // the event could not be encoded
	ErrTooLarge      ErrorCode = -13 // the encoded event exceeds event.max.bytes
	ErrShutdown      ErrorCode = -14 // the client is closed or closing
	ErrSpoolFull     ErrorCode = -15 // the spool reached spool.max.bytes; oldest dropped
	ErrSpoolExpired  ErrorCode = -16 // the event was older than spool.max.age.ms
	ErrTypeReserved  ErrorCode = -17 // the event type names one of the pipeline's own topics
	ErrBroker        ErrorCode = 1   // the broker refused the event
)

// Error returns the library's description of the code (ue_err2str).
func (c ErrorCode) Error() string { return C.GoString(C.ue_err2str(C.ue_err_t(c))) }

// String returns the symbolic name, e.g. "UE_ERR_QUEUE_FULL" (ue_err2name).
func (c ErrorCode) String() string { return C.GoString(C.ue_err2name(C.ue_err_t(c))) }

// Error is what the binding returns for a failed call: the C error code and what failed.
// errors.Is(err, ErrQueueFull) and errors.As(err, &*Error) both work.
type Error struct {
	// Code is the C error code. It is 0 only for NewClient failures, where
	// ue_client_new() reports a reason but no code.
	Code ErrorCode
	// Message says what failed, in words.
	Message string
}

func (e *Error) Error() string {
	if e.Code == 0 {
		return "userevents: " + e.Message
	}
	return "userevents: " + e.Message + " (" + e.Code.String() + ")"
}

// Unwrap returns the code, so that errors.Is(err, ErrTimedOut) works.
func (e *Error) Unwrap() error {
	if e.Code == 0 {
		return nil
	}
	return e.Code
}

// newError is the *Error for C code rc: what failed, then the library's description.
func newError(rc C.ue_err_t, what string) error {
	code := ErrorCode(rc)
	if what == "" {
		return &Error{Code: code, Message: code.Error()}
	}
	return &Error{Code: code, Message: what + ": " + code.Error()}
}
