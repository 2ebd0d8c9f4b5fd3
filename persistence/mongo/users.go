package mongo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
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
// oldHash (persistence.PasswordRehasher), in one update (on FerretDB under
// the document's lock, see docLocks); the token version and UpdatedAt stay.
func (s *Store) RehashPassword(ctx context.Context, id, oldHash, newHash string) error {
	oid, ok := objectID(id)
	if !ok {
		return fmt.Errorf("rehash password of user %s: %w", id, persistence.ErrNotFound)
	}
	unlock, err := s.locks.lock(ctx, oid)
	if err != nil {
		return fmt.Errorf("rehash password of user %s: %w", id, err)
	}
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

// newTokenVersion increments user id's token version, setting set's
// fields in the same findAndModify (on FerretDB under the document's lock)
// if the document also matches where, and returns the new version;
// ErrNotFound for an unknown or malformed id, a user being deleted, or a
// document where does not match.
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
	unlock, err := s.locks.lock(ctx, oid)
	if err != nil {
		return 0, err
	}
	defer unlock()
	err = s.users.FindOneAndUpdate(ctx, append(bson.D{{Key: "_id", Value: oid}, notDeleting}, where...), update,
		options.FindOneAndUpdate().SetReturnDocument(options.After), // no projection: FerretDB lacks it here
	).Decode(&d)
	if err != nil {
		return 0, mapErr(err)
	}
	return d.TokenVersion, nil
}

// emailsID is the _id of the meta document recording that every stored
// email was rewritten in its normal form (normalizeEmailsOnce).
const emailsID = "emails_normalized"

// emailCandidates selects the emails that may not be in their normal
// form: those holding a character outside ASCII, an ASCII capital, or
// white space at an end. An email of lower-case ASCII alone is its own
// normal form (emailform.Normalize), so those are never read.
var emailCandidates = bson.D{{Key: "email", Value: bson.Regex{Pattern: `[^\x00-\x7f]|[A-Z]|^[\t-\r ]|[\t-\r ]$`}}}

// normalizeEmailsOnce rewrites the stored emails in their normal form
// (normalizeEmails) unless the meta collection records it done, and
// records it when the pass ended with no failure but logged collisions:
// the first Open of a release that has it does the work, every later one
// one read of meta. The pass has its own context, bounded by
// opts.EmailRewriteTimeout, not Open's (bounded by the connect timeout).
// It never fails Open: an
// account that cannot be rewritten signs in anyway (the account routes
// look every form of an email up), so a failure is logged and the next
// Open tries again.
func (s *Store) normalizeEmailsOnce(ctx context.Context, opts Options) {
	switch err := s.meta.FindOne(ctx, bson.D{{Key: "_id", Value: emailsID}}).Err(); {
	case err == nil:
		return
	case !errors.Is(err, mongo.ErrNoDocuments):
		s.log.Warn("rewrite of emails in their normal form not run: its record unread; the next start tries again",
			"err", mapErr(err))
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.EmailRewriteTimeout)
	defer cancel()
	s.emailsRewritten = true
	failed, err := s.normalizeEmails(ctx, opts.failEmailRewrite)
	if err == nil && failed == 0 {
		err = s.upsertMeta(ctx, emailsID, bson.D{{Key: "at", Value: now()}})
	}
	switch {
	case err != nil:
		s.log.Error("rewrite of emails in their normal form not finished; the next start tries again", "err", err)
	case failed > 0:
		s.log.Error("rewrite of emails in their normal form failed for some accounts; the next start tries again",
			"failed", failed)
	}
}

// normalizeEmails rewrites each stored email that is not in the normal
// form of today (emailform.Normalize, lower-cased as CreateUser stores it)
// into it: an account an older release stored as "νικος@example.gr"
// (lower case, no case folding) becomes "νικοσ@example.gr", so the unique
// email index refuses a second account in any spelling of it. It reads
// the candidates only (emailCandidates), oldest first, through a cursor,
// so of two stored emails of one normal form the older account gets it;
// one whose normal form another account already holds keeps its stored
// form, logged, and signs in with its own password (the account routes
// look every form up). Another error on one account is logged and
// counted in failed, and the pass goes on. Each write is conditioned on
// the email it read, so instances starting together rewrite each account
// once between them.
// fail, when set (tests), fails the write of the emails it errs for.
func (s *Store) normalizeEmails(ctx context.Context, fail func(email string) error) (failed int, err error) {
	cur, err := s.users.Find(ctx, emailCandidates, options.Find().
		SetProjection(bson.D{{Key: "email", Value: 1}}).
		SetSort(bson.D{{Key: "created_at", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return 0, fmt.Errorf("normalize emails: %w", mapErr(err))
	}
	defer func() { _ = cur.Close(context.WithoutCancel(ctx)) }()
	seen := 0
	for cur.Next(ctx) {
		var u struct {
			ID    bson.ObjectID `bson:"_id"`
			Email string        `bson:"email"`
		}
		if err := cur.Decode(&u); err != nil {
			return failed, fmt.Errorf("normalize emails: %w", err)
		}
		if seen++; seen%1000 == 0 {
			s.log.Info("rewriting emails in their normal form", "accounts_read", seen)
		}
		if !s.normalizeEmail(ctx, u.ID, u.Email, fail) {
			failed++
		}
	}
	if err := cur.Err(); err != nil {
		return failed, fmt.Errorf("normalize emails: %w", mapErr(err))
	}
	return failed, nil
}

// normalizeEmail rewrites the email of account id, stored as email, in
// its normal form, and says whether that ended as it should (rewritten,
// already in it, or left apart as a logged collision).
func (s *Store) normalizeEmail(ctx context.Context, id bson.ObjectID, email string, fail func(string) error) bool {
	form := strings.ToLower(emailform.Normalize(email))
	if form == email {
		return true
	}
	var err error
	if fail != nil {
		err = fail(email)
	}
	if err == nil {
		_, err = s.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}, {Key: "email", Value: email}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "email", Value: form}}}})
	}
	switch err = mapErr(err); {
	case errors.Is(err, persistence.ErrDuplicate), err != nil && s.emailHeld(ctx, form, id):
		s.log.Warn("account email left in an older form: another account holds its normal form",
			"user_id", id.Hex())
	case err != nil:
		s.log.Error("account email not rewritten in its normal form", "user_id", id.Hex(), "err", err)
		return false
	default:
		s.log.Info("account email rewritten in its normal form", "user_id", id.Hex())
	}
	return true
}

// emailHeld tells whether an account other than id holds email: what a
// failed rewrite of normalizeEmails is told by, where the server does not
// answer a duplicate key error for an update (FerretDB answers an
// internal error naming the unique constraint).
func (s *Store) emailHeld(ctx context.Context, email string, id bson.ObjectID) bool {
	err := s.users.FindOne(ctx, bson.D{{Key: "email", Value: email}, {Key: "_id", Value: bson.D{{Key: "$ne", Value: id}}}}).Err()
	return err == nil
}
