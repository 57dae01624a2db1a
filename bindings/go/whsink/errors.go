package whsink

// #include <whsink.h>
import "C"

// ErrorCode is a whs_err_t of whsink.h, and an error itself:
//
//	if errors.Is(err, whsink.ErrClosed) { ... }
type ErrorCode int

// The codes of whsink.h, same numbers (the tests check each against whs_err2name()).
const (
	ErrInvalidArg        ErrorCode = -1 // a malformed argument
	ErrConfUnknown       ErrorCode = -2 // unknown configuration key
	ErrConfInvalid       ErrorCode = -3 // configuration value out of range or malformed
	ErrNoMem             ErrorCode = -4 // out of memory
	ErrTimedOut          ErrorCode = -5 // a deadline passed before the work was done
	ErrRecursiveCall     ErrorCode = -6 // called from inside one of this sink's callbacks
	ErrClosed            ErrorCode = -7 // the sink is closed (also: a nil *Sink)
	ErrKafkaInit         ErrorCode = -8 // the Kafka consumer or producer could not be created
	ErrMapping           ErrorCode = -9 // a record could not be mapped to a row: dead-lettered
	ErrWarehouse         ErrorCode = 1  // a warehouse operation failed; retried with backoff
	ErrWarehouseRejected ErrorCode = 2  // the warehouse refused rows for good: dead-lettered
	ErrFenced            ErrorCode = 3  // another sink moved a partition's offsets first
	ErrKafka             ErrorCode = 4  // the Kafka cluster reported an error
	ErrDeadLetter        ErrorCode = 5  // a dead letter could not be delivered
	ErrKafkaFatal        ErrorCode = 6  // librdkafka raised a fatal error: the sink must stop
)

// Error returns the library's description of the code (whs_err2str).
func (c ErrorCode) Error() string { return C.GoString(C.whs_err2str(C.whs_err_t(c))) }

// String returns the symbolic name, e.g. "WHS_ERR_FENCED" (whs_err2name).
func (c ErrorCode) String() string { return C.GoString(C.whs_err2name(C.whs_err_t(c))) }

// Error is a failed call, or a failure reported to the error callback: the C code, its name
// and what failed. errors.Is(err, ErrTimedOut) and errors.As(err, &e) both work.
type Error struct {
	// Code is the C error code; 0 only when NewSink fails in whs_sink_new(), which gives a
	// reason but no code.
	Code    ErrorCode
	Name    string // Code.String(), "" when Code is 0
	Message string // what failed, in words
}

func (e *Error) Error() string {
	if e.Code == 0 {
		return "whsink: " + e.Message
	}
	return "whsink: " + e.Message + " (" + e.Name + ")"
}

// Unwrap returns the code, so that errors.Is(err, ErrClosed) works.
func (e *Error) Unwrap() error {
	if e.Code == 0 {
		return nil
	}
	return e.Code
}

func newError(code ErrorCode, what string) *Error {
	return &Error{Code: code, Name: code.String(), Message: what + ": " + code.Error()}
}

var errClosed = newError(ErrClosed, "the sink is closed")
