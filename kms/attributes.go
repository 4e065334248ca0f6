package kms

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Attribute instances (KMIP Add / Modify / Delete / Set Attribute). An
// attribute may hold several instances, each under an index; the choice of
// index and the single-valued rule are decided here, inside the write of
// the record, so two clients adding instances at once both keep theirs.
// Values are opaque strings to kms (the adapter's encoding); instance i > 0
// of name is stored under "name#i" in Secret.Attributes.

// AttrName is the attribute kept in Secret.Name rather than Attributes.
const AttrName = "Name"

// AttrOpKind is what an attribute operation does.
type AttrOpKind int

const (
	AttrAdd       AttrOpKind = iota // a new instance; the index is chosen here
	AttrModify                      // replace the value of one instance
	AttrDelete                      // remove one instance
	AttrDeleteAll                   // remove every instance
	AttrSet                         // the single value, added or replaced (single-valued attributes only)
)

// AttrOp is one attribute operation. The instance a Modify or Delete
// targets is the one whose value is Current (ByValue), the one at Index
// (ByIndex), or else the only one.
type AttrOp struct {
	Kind  AttrOpKind
	Name  string
	Multi bool   // the attribute may have several instances
	Value string // the new value (Add, Modify, Set)

	ByIndex bool
	Index   int32
	ByValue bool
	Current string
}

// AttrInstance is one stored instance.
type AttrInstance struct {
	Index int32
	Value string
}

// InstanceKey is the Secret.Attributes key of instance index of name.
func InstanceKey(name string, index int32) string {
	if index == 0 {
		return name
	}
	return name + "#" + strconv.Itoa(int(index))
}

// ParseInstanceKey splits a Secret.Attributes key into name and index.
func ParseInstanceKey(key string) (string, int32) {
	if i := strings.LastIndexByte(key, '#'); i > 0 {
		if n, err := strconv.Atoi(key[i+1:]); err == nil && n > 0 {
			return key[:i], int32(n)
		}
	}
	return key, 0
}

// Instances returns the stored instances of name, by index.
func (s *Secret) Instances(name string) []AttrInstance {
	if name == AttrName {
		if s.Name == "" {
			return nil
		}
		return []AttrInstance{{Value: s.Name}}
	}
	var out []AttrInstance
	for k, v := range s.Attributes {
		if n, idx := ParseInstanceKey(k); n == name {
			out = append(out, AttrInstance{Index: idx, Value: v})
		}
	}
	slices.SortFunc(out, func(a, b AttrInstance) int { return int(a.Index) - int(b.Index) })
	return out
}

// ChangeAttribute applies op to the secret in one write and returns the
// instance it touched (for a delete, the one removed; for a delete of all,
// the first).
func (s *Service) ChangeAttribute(ctx context.Context, who Identity, id string, op AttrOp) (out AttrInstance, err error) {
	ctx = s.begin(ctx, who, "attribute_change")
	defer func() { s.record(ctx, who, "attribute_change", id, err) }()
	_, err = s.update(ctx, id, anyState, func(r *record) error {
		if err := s.allowSecret(SecretUpdate, who, r.Secret); err != nil {
			return err
		}
		if r.State == Destroyed {
			return Conflict("secret %s is destroyed", id)
		}
		before := r.Secret.Attributes
		var err error
		if out, err = applyAttr(r.Secret, op); err == nil {
			err = keepProtection(before, r.Secret)
		}
		return err
	})
	return out, err
}

func applyAttr(sec *Secret, op AttrOp) (AttrInstance, error) {
	insts := sec.Instances(op.Name)
	switch op.Kind {
	case AttrAdd:
		var idx int32
		if len(insts) > 0 {
			if !op.Multi {
				return AttrInstance{}, newErr(KindSingleValued, "the object already has a %s: modify it", op.Name)
			}
			idx = insts[len(insts)-1].Index + 1
		}
		return putAttr(sec, op.Name, idx, op.Value)
	case AttrSet:
		if op.Multi {
			return AttrInstance{}, newErr(KindMultiValued, "the %s attribute may have several values: add or modify one", op.Name)
		}
		return putAttr(sec, op.Name, 0, op.Value)
	case AttrModify:
		in, err := pickInstance(insts, op)
		if err != nil {
			return in, err
		}
		return putAttr(sec, op.Name, in.Index, op.Value)
	case AttrDelete, AttrDeleteAll:
		if len(insts) == 0 {
			return AttrInstance{}, newErr(KindNoAttribute, "the object has no %s attribute", op.Name)
		}
		gone := insts
		if op.Kind == AttrDelete {
			in, err := pickInstance(insts, op)
			if err != nil {
				return in, err
			}
			gone = []AttrInstance{in}
		}
		for _, in := range gone {
			if _, err := putAttr(sec, op.Name, in.Index, ""); err != nil {
				return in, err
			}
		}
		return gone[0], nil
	}
	return AttrInstance{}, Invalid("unknown attribute operation")
}

// pickInstance finds the instance a Modify or Delete targets.
func pickInstance(insts []AttrInstance, op AttrOp) (AttrInstance, error) {
	switch {
	case len(insts) == 0:
		return AttrInstance{}, newErr(KindNoAttribute, "the object has no %s attribute", op.Name)
	case op.ByValue:
		for _, in := range insts {
			if in.Value == op.Current {
				return in, nil
			}
		}
		return AttrInstance{}, newErr(KindNoInstance, "no %s instance has that value", op.Name)
	case op.ByIndex:
		for _, in := range insts {
			if in.Index == op.Index {
				return in, nil
			}
		}
		return AttrInstance{}, newErr(KindNoInstance, "the %s attribute has no index %d", op.Name, op.Index)
	case len(insts) == 1:
		return insts[0], nil
	}
	return AttrInstance{}, Invalid("the %s attribute has several instances: name one", op.Name)
}

// putAttr stores (value "": removes) one instance.
func putAttr(sec *Secret, name string, idx int32, value string) (AttrInstance, error) {
	if name == AttrName {
		if len(value) > MaxNameLen {
			return AttrInstance{}, Invalid("name is longer than %d characters", MaxNameLen)
		}
		sec.Name = value
		return AttrInstance{Value: value}, nil
	}
	if sec.Attributes == nil {
		sec.Attributes = map[string]string{}
	} else {
		sec.Attributes = maps.Clone(sec.Attributes) // the record may be shared
	}
	key := InstanceKey(name, idx)
	old := sec.Attributes[key]
	if value == "" {
		delete(sec.Attributes, key)
		return AttrInstance{Index: idx, Value: old}, nil
	}
	sec.Attributes[key] = value
	return AttrInstance{Index: idx, Value: value}, nil
}
