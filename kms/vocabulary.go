package kms

// Vocabulary both adapters share: declared once here, used by kms, barbican
// and kmip.

// Payload content types, in their stored form (Secret.ContentType).
const (
	ContentTypeText   = "text/plain"
	ContentTypeBinary = "application/octet-stream"
	ContentTypePKCS8  = "application/pkcs8"

	// ContentTypeTextUTF8 is the spelling of UTF-8 plain text Barbican
	// lists among its supported types; it is stored as ContentTypeText.
	ContentTypeTextUTF8 = ContentTypeText + ";charset=utf-8"
)

// MaxNameLen is the longest name of a secret, in bytes (Barbican's 255).
const MaxNameLen = 255

// MaxUserIDLen is the longest user id an ACL may list, in bytes.
const MaxUserIDLen = 255
