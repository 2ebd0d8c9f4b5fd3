package mongo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"chatd/internal/emailform"
	"chatd/persistence"
)

// CreateUser stores u, filling ID (when empty) and timestamps and
// lower-casing Email; ErrDuplicate if the email is taken.
func (s *Store) CreateUser(ctx context.Context, u *persistence.User) error {
	id, err := idOrNew(u.ID)
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	t := now()
	d := userDoc{
		ID:           id,
		Email:        strings.ToLower(u.Email),
		Name:         u.Name,
		PasswordHash: u.PasswordHash,
		TokenVersion: u.TokenVersion,
		CreatedAt:    t,
		UpdatedAt:    t,
	}
	if _, err := s.users.InsertOne(ctx, d); err != nil {
		return fmt.Errorf("create user: %w", mapErr(err))
	}
	*u = d.user()
	return nil
}

// UserByEmail finds a user by email (compared lower-cased).
func (s *Store) UserByEmail(ctx context.Context, email string) (persistence.User, error) {
	u, err := s.findUser(ctx, bson.D{{Key: "email", Value: strings.ToLower(email)}})
	if err != nil {
		return u, fmt.Errorf("user by email: %w", err)
	}
	return u, nil
}

// UserByID finds a user by id.
func (s *Store) UserByID(ctx context.Context, id string) (persistence.User, error) {
	oid, ok := objectID(id)
	if !ok {
		return persistence.User{}, fmt.Errorf("user %s: %w", id, persistence.ErrNotFound)
	}
	u, err := s.findUser(ctx, bson.D{{Key: "_id", Value: oid}})
	if err != nil {
		return u, fmt.Errorf("user %s: %w", id, err)
	}
	return u, nil
}

// findUser finds the user filter selects, unless DeleteUser marked them.
func (s *Store) findUser(ctx context.Context, filter bson.D) (persistence.User, error) {
	var d userDoc
	if err := s.users.FindOne(ctx, append(filter, notDeleting)).Decode(&d); err != nil {
		return persistence.User{}, mapErr(err)
	}
	return d.user(), nil
}

// BumpTokenVersion increments the user's token version and returns the new
// one, in one atomic findAndModify.
func (s *Store) BumpTokenVersion(ctx context.Context, id string) (int64, error) {
	v, err := s.newTokenVersion(ctx, id, nil)
	if err != nil {
		return 0, fmt.Errorf("bump token version of user %s: %w", id, err)
	}
	return v, nil
}

// ChangePassword replaces the user's password hash, increments their token
// version and moves UpdatedAt forward in one atomic findAndModify, while
// the token version is fromVersion; it returns the new token version.
func (s *Store) ChangePassword(ctx context.Context, id, passwordHash string, fromVersion int64) (int64, error) {
	v, err := s.newTokenVersion(ctx, id, bson.D{{Key: "password_hash", Value: passwordHash}, {Key: "updated_at", Value: now()}},
		bson.E{Key: "token_version", Value: fromVersion})
	if errors.Is(err, persistence.ErrNotFound) {
		if _, uerr := s.UserByID(ctx, id); uerr == nil {
			err = persistence.ErrConflict // the user is there: the version moved
		}
	}
	if err != nil {
		return 0, fmt.Errorf("change password of user %s: %w", id, err)
	}
	return v, nil
}

// RehashPassword sets the user's password hash to newHash while it is
// oldHash (persistence.PasswordRehasher), in one update under the
// document's lock; the token version and UpdatedAt stay.
func (s *Store) RehashPassword(ctx context.Context, id, oldHash, newHash string) error {
	oid, ok := objectID(id)
	if !ok {
		return fmt.Errorf("rehash password of user %s: %w", id, persistence.ErrNotFound)
	}
	unlock := s.locks.lock(oid)
	r, err := s.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: oid}, notDeleting, {Key: "password_hash", Value: oldHash}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "password_hash", Value: newHash}}}})
	unlock()
	if err == nil && r.MatchedCount == 0 {
		err = persistence.ErrConflict // the user is there, or UserByID says not
		if _, uerr := s.UserByID(ctx, id); uerr != nil {
			err = uerr
		}
	}
	if err != nil {
		return fmt.Errorf("rehash password of user %s: %w", id, mapErr(err))
	}
	return nil
}

// newTokenVersion increments user id's token version, setting set's fields
// in the same findAndModify (under the document's lock) if the document
// also matches where, and returns the new version; ErrNotFound for an
// unknown or malformed id, a user being deleted, or a document where does
// not match.
func (s *Store) newTokenVersion(ctx context.Context, id string, set bson.D, where ...bson.E) (int64, error) {
	oid, ok := objectID(id)
	if !ok {
		return 0, persistence.ErrNotFound
	}
	update := bson.D{{Key: "$inc", Value: bson.D{{Key: "token_version", Value: int64(1)}}}}
	if len(set) > 0 {
		update = append(update, bson.E{Key: "$set", Value: set})
	}
	var d struct {
		TokenVersion int64 `bson:"token_version"`
	}
	defer s.locks.lock(oid)()
	err := s.users.FindOneAndUpdate(ctx, append(bson.D{{Key: "_id", Value: oid}, notDeleting}, where...), update,
		options.FindOneAndUpdate().SetReturnDocument(options.After), // no projection: FerretDB lacks it here
	).Decode(&d)
	if err != nil {
		return 0, mapErr(err)
	}
	return d.TokenVersion, nil
}

// normalizeEmails rewrites, at Open, each stored email that is not in
// the normal form of today (emailform.Normalize, lower-cased as
// CreateUser stores it) into it: an account an older release stored as
// "νικος@example.gr" (lower case, no case folding) becomes
// "νικοσ@example.gr", so the unique email index refuses a second account
// in any spelling of it. Accounts are taken oldest first, so of two
// stored emails of one normal form the older account gets it; one whose
// normal form another account already holds keeps its stored form,
// logged, and signs in with its own password (the account routes look
// every form up). Each write is conditioned on the email it read, so
// instances starting together rewrite each account once between them;
// it runs at each Open and rewrites only what differs (idempotent).
func (s *Store) normalizeEmails(ctx context.Context) error {
	cur, err := s.users.Find(ctx, bson.D{}, options.Find().
		SetProjection(bson.D{{Key: "email", Value: 1}}).
		SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return fmt.Errorf("normalize emails: %w", mapErr(err))
	}
	type stored struct {
		ID    bson.ObjectID `bson:"_id"`
		Email string        `bson:"email"`
	}
	var all []stored
	if err := cur.All(ctx, &all); err != nil {
		return fmt.Errorf("normalize emails: %w", mapErr(err))
	}
	for _, u := range all {
		form := strings.ToLower(emailform.Normalize(u.Email))
		if form == u.Email {
			continue
		}
		_, err := s.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: u.ID}, {Key: "email", Value: u.Email}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "email", Value: form}}}})
		switch err = mapErr(err); {
		case errors.Is(err, persistence.ErrDuplicate), err != nil && s.emailHeld(ctx, form, u.ID):
			s.log.Warn("account email left in an older form: another account holds its normal form",
				"user_id", u.ID.Hex())
		case err != nil:
			return fmt.Errorf("normalize email of user %s: %w", u.ID.Hex(), err)
		default:
			s.log.Info("account email rewritten in its normal form", "user_id", u.ID.Hex())
		}
	}
	return nil
}

// emailHeld tells whether an account other than id holds email: what a
// failed rewrite of normalizeEmails is told by, where the server does not
// answer a duplicate key error for an update (FerretDB answers an
// internal error naming the unique constraint).
func (s *Store) emailHeld(ctx context.Context, email string, id bson.ObjectID) bool {
	err := s.users.FindOne(ctx, bson.D{{Key: "email", Value: email}, {Key: "_id", Value: bson.D{{Key: "$ne", Value: id}}}}).Err()
	return err == nil
}
