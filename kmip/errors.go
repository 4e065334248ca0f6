package kmip

import (
	"errors"
	"fmt"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"

	"github.com/keywarden/keywarden/kms"
)

// opError is the failure of one batch item (or of a whole message): a KMIP
// Result Reason and a message safe to show the client.
type opError struct {
	reason kmip20.ResultReason
	msg    string
}

func (e *opError) Error() string { return e.msg }

func errf(reason kmip20.ResultReason, format string, args ...any) *opError {
	return &opError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

func invalidMessage(format string, args ...any) *opError {
	return errf(kmip20.ResultReasonInvalidMessage, format, args...)
}

func invalidField(format string, args ...any) *opError {
	return errf(kmip20.ResultReasonInvalidField, format, args...)
}

func missingData(format string, args ...any) *opError {
	return errf(kmip20.ResultReasonMissingData, format, args...)
}

func notSupported(format string, args ...any) *opError {
	return errf(kmip20.ResultReasonFeatureNotSupported, format, args...)
}

// fromKMS translates a kms error: kms decides, the kind says what it
// decided, and this only names it in KMIP.
func fromKMS(err error) *opError {
	var ke *kms.Error
	msg := "internal error"
	if errors.As(err, &ke) {
		msg = ke.Msg
	}
	switch kms.KindOf(err) {
	case kms.KindNotFound:
		return errf(kmip20.ResultReasonItemNotFound, "%s", msg)
	case kms.KindForbidden:
		return errf(kmip20.ResultReasonPermissionDenied, "%s", msg)
	case kms.KindConflict:
		return errf(kmip20.ResultReasonIllegalOperation, "%s", msg)
	case kms.KindWrongState:
		return errf(kmip20.ResultReasonWrongKeyLifecycleState, "%s", msg)
	case kms.KindReadOnly:
		return errf(kmip20.ResultReasonReadOnlyAttribute, "%s", msg)
	case kms.KindMultiValued:
		return errf(kmip20.ResultReasonMultiValuedAttribute, "%s", msg)
	case kms.KindUsage:
		return errf(kmip20.ResultReasonIncompatibleCryptographicUsageMask, "%s", msg)
	case kms.KindInvalid:
		// A Decrypt without the IV its mode needs is an incomplete
		// message (KMIP 1.4 test cases CS-BC-M-11 to 13: Invalid Message).
		if ke != nil && ke.Field == "IV" {
			return errf(kmip20.ResultReasonInvalidMessage, "%s", msg)
		}
		// A length that is no GCM tag length: General Failure, as test
		// case CS-BC-M-GCM-1 expects (1.4 has no closer reason).
		if ke != nil && ke.Field == "TagLength" {
			return errf(kmip20.ResultReasonGeneralFailure, "%s", msg)
		}
		return errf(kmip20.ResultReasonInvalidField, "%s", msg)
	case kms.KindTooLarge:
		return errf(kmip20.ResultReasonInvalidMessage, "%s", msg)
	case kms.KindUnauthenticated:
		return errf(kmip20.ResultReasonAuthenticationNotSuccessful, "%s", msg)
	case kms.KindSingleValued:
		return errf(kmip20.ResultReasonAttributeSingleValued, "%s", msg)
	case kms.KindNoAttribute:
		return errf(kmip20.ResultReasonAttributeNotFound, "%s", msg)
	case kms.KindNoInstance:
		return errf(kmip20.ResultReasonAttributeInstanceNotFound, "%s", msg)
	case kms.KindSensitive:
		return errf(kmip20.ResultReasonSensitive, "%s", msg)
	case kms.KindNotExtractable:
		return errf(kmip20.ResultReasonNotExtractable, "%s", msg)
	case kms.KindCryptoFailure:
		return errf(kmip20.ResultReasonCryptographicFailure, "%s", msg)
	}
	return errf(kmip20.ResultReasonGeneralFailure, "%s", msg)
}

// reasonFor returns the Result Reason to send at version v: the reasons
// KMIP 2.0 added are mapped onto the closest 1.x one, since a 1.x client
// (PyKMIP among them) rejects an enumeration value it does not know.
func reasonFor(v version, r kmip20.ResultReason) uint32 {
	if v.major >= 2 || r <= kmip20.ResultReasonObjectAlreadyExists || r == kmip20.ResultReasonGeneralFailure {
		return uint32(r)
	}
	switch r {
	case kmip20.ResultReasonObjectNotFound, kmip20.ResultReasonAttributeNotFound,
		kmip20.ResultReasonAttributeInstanceNotFound, kmip20.ResultReasonObjectDestroyed:
		return uint32(kmip14.ResultReasonItemNotFound)
	case kmip20.ResultReasonWrongKeyLifecycleState, kmip20.ResultReasonAttributeSingleValued,
		kmip20.ResultReasonMultiValuedAttribute, kmip20.ResultReasonIncompatibleCryptographicUsageMask:
		return uint32(kmip14.ResultReasonIllegalOperation)
	case kmip20.ResultReasonReadOnlyAttribute, kmip20.ResultReasonAttributeReadOnly,
		kmip20.ResultReasonNotAuthorized:
		return uint32(kmip14.ResultReasonPermissionDenied)
	case kmip20.ResultReasonUnsupportedProtocolVersion, kmip20.ResultReasonUnknownTag,
		kmip20.ResultReasonCodecError:
		return uint32(kmip14.ResultReasonInvalidMessage)
	case kmip20.ResultReasonInvalidDataType, kmip20.ResultReasonUnsupportedAttribute,
		kmip20.ResultReasonInvalidAttribute, kmip20.ResultReasonInvalidAttributeValue,
		kmip20.ResultReasonInvalidObjectType, kmip20.ResultReasonIllegalObjectType,
		kmip20.ResultReasonUnknownEnumeration, kmip20.ResultReasonNumericRange,
		kmip20.ResultReasonBadCryptographicParameters, kmip20.ResultReasonUnsupportedCryptographicParameters,
		kmip20.ResultReasonMissingInitializationVector, kmip20.ResultReasonInvalidCorrelationValue:
		return uint32(kmip14.ResultReasonInvalidField)
	}
	return uint32(kmip14.ResultReasonGeneralFailure)
}
