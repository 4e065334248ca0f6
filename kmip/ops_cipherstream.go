package kmip

import (
	"crypto/rand"

	"github.com/gemalto/kmip-go/kmip14"
	"github.com/gemalto/kmip-go/kmip20"

	"github.com/keywarden/keywarden/crypto"
)

// Streamed Encrypt and Decrypt: kms.CipherStream does the work and says
// when output may leave; this file keeps the stream between requests and
// writes each part's answer as TC-STREAM-ENC-1-14 shows it: Unique
// Identifier, the Data made so far (left out when there is none), the
// server's IV at the Init part, the Correlation Value until the final part
// and, at the final part of a GCM encryption, the tag.

// streamed says r is a part of a stream rather than one request.
func (r *cryptoRequest) streamed() bool {
	return r.corr != nil || r.init != r.final || (r.hasFinal && !r.final)
}

// cipherPart answers one part of a streamed Encrypt or Decrypt.
func (c *opCtx) cipherPart(op uint32, r *cryptoRequest, encrypt bool) *opError {
	if r.corr == nil {
		if !r.init {
			return missingData("a part after the first needs the stream's Correlation Value")
		}
		return c.openCipherStream(op, r, encrypt)
	}
	if r.params.IV != nil || r.params.AAD != nil {
		return invalidField("a stream's IV and additional data are given at its Init part")
	}
	if r.params.Tag != nil && !r.final {
		return invalidField("a stream's authentication tag is given at its final part")
	}
	t := streams
	t.mu.Lock()
	defer t.mu.Unlock()
	key, s, perr := t.find(c, op, r)
	if perr != nil {
		return perr
	}
	if perr := t.take(key, s, len(r.data)); perr != nil {
		return perr
	}
	if !r.final {
		out, err := s.cs.Update(r.data)
		if err != nil {
			t.drop(key)
			return fromKMS(err)
		}
		c.writeCipherPart(s.id, out, nil, r.corr, nil)
		return nil
	}
	res, err := s.cs.Final(r.data, r.params.Tag)
	t.drop(key)
	if err != nil {
		return fromKMS(err)
	}
	c.writeCipherPart(s.id, res.Data, nil, nil, res.Tag)
	return nil
}

// openCipherStream has kms decide and set the stream up, runs the first
// part and answers with the Correlation Value.
func (c *opCtx) openCipherStream(op uint32, r *cryptoRequest, encrypt bool) *opError {
	if perr := streams.room(c, len(r.data)); perr != nil {
		return perr
	}
	cs, res, err := c.svc.OpenCipherStream(c.ctx, c.who, r.id, r.params, encrypt)
	if err != nil {
		return fromKMS(err)
	}
	out, err := cs.Update(r.data)
	if err != nil {
		cs.Close()
		return fromKMS(err)
	}
	corr := make([]byte, 16)
	_, _ = rand.Read(corr)
	t := streams
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= maxStreams || t.bytes+len(r.data) > maxStreamTotal {
		cs.Close()
		crypto.Zero(out)
		return errf(kmip20.ResultReasonServerLimitExceeded, "too many open streams; try again later")
	}
	t.m[string(corr)] = &stream{owner: c.owner(), op: op, id: r.id, cs: cs, n: len(r.data), expires: c.now.Add(streamTTL)}
	t.bytes += len(r.data)
	c.writeCipherPart(r.id, out, res.IV, corr, nil)
	return nil
}

// room sweeps expired streams and checks a new one of n bytes fits.
func (t *streamTable) room(c *opCtx, n int) *opError {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, s := range t.m {
		if c.now.After(s.expires) {
			t.drop(k)
		}
	}
	if len(t.m) >= maxStreams || n > maxStreamData || t.bytes+n > maxStreamTotal {
		return errf(kmip20.ResultReasonServerLimitExceeded, "too many open streams; try again later")
	}
	return nil
}

// writeCipherPart writes a part's answer in the payload's order and
// zeroes the output (plaintext, for Decrypt) once written.
func (c *opCtx) writeCipherPart(id string, data, iv, corr, tag []byte) {
	c.writeUID(id)
	if len(data) > 0 {
		c.w.bytes(kmip14.TagData, data)
		crypto.Zero(data)
	}
	if iv != nil {
		c.w.bytes(kmip14.TagIVCounterNonce, iv)
	}
	if corr != nil {
		c.w.bytes(kmip14.TagCorrelationValue, corr)
	}
	if tag != nil {
		c.w.bytes(kmip14.TagAuthenticatedEncryptionTag, tag)
	}
}
