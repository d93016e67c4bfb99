package wallet

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
)

// Errors reading an encrypted keystore. They never carry the passphrase or key material.
var (
	// ErrBadPassphrase reports a passphrase that does not decrypt the keystore.
	ErrBadPassphrase = errors.New("wallet: the passphrase does not decrypt the keystore")
	// ErrNotKeystore reports a file that is not an encrypted keystore in the go-ethereum
	// (Web3 Secret Storage) format.
	ErrNotKeystore = errors.New("wallet: not an encrypted keystore file")
	// ErrEmptyPassphrase reports an empty passphrase: a keystore encrypted with it protects
	// nothing, so the wallet refuses to write one.
	ErrEmptyPassphrase = errors.New("wallet: the passphrase is empty")
)

// ScryptParams are the cost parameters of a keystore's key derivation.
type ScryptParams struct{ N, P int }

// Scrypt costs: StandardScrypt (256 MB, about a second) protects a key at rest; LightScrypt
// (4 MB) suits machines with little memory and tests.
var (
	StandardScrypt = ScryptParams{N: keystore.StandardScryptN, P: keystore.StandardScryptP}
	LightScrypt    = ScryptParams{N: keystore.LightScryptN, P: keystore.LightScryptP}
)

// maxKeystoreSize bounds what LoadKeystore reads: a keystore is under 1 KB, anything far larger
// is not one.
const maxKeystoreSize = 64 << 10

// LoadKeystore decrypts a go-ethereum keystore file (Web3 Secret Storage v3, as written by
// geth, clef, foundry's cast or WriteKeystore) with passphrase. Like LoadKeyFile it refuses a
// file other users can access. Errors never include the file's contents or the passphrase.
func LoadKeystore(path string, passphrase []byte) (*ecdsa.PrivateKey, error) {
	data, err := readPrivateFile(path, "keystore", maxKeystoreSize)
	if err != nil {
		return nil, err
	}
	k, err := keystore.DecryptKey(data, string(passphrase))
	switch {
	case errors.Is(err, keystore.ErrDecrypt):
		return nil, fmt.Errorf("%w (%s)", ErrBadPassphrase, path)
	case err != nil:
		// DecryptKey's other errors can quote the file (JSON syntax); say only what failed.
		return nil, fmt.Errorf("%w (%s)", ErrNotKeystore, path)
	}
	return k.PrivateKey, nil
}

// WriteKeystore encrypts key with passphrase into a new keystore file readable only by its
// owner; it never overwrites a file.
func WriteKeystore(path string, key *ecdsa.PrivateKey, passphrase []byte, params ScryptParams) error {
	if len(passphrase) == 0 {
		return ErrEmptyPassphrase
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return fmt.Errorf("wallet: keystore id: %w", err)
	}
	data, err := keystore.EncryptKey(&keystore.Key{Id: id, Address: crypto.PubkeyToAddress(key.PublicKey), PrivateKey: key},
		string(passphrase), params.N, params.P)
	if err != nil {
		return fmt.Errorf("wallet: encrypting keystore: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("wallet: creating keystore: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("wallet: writing keystore: %w", err)
	}
	return nil
}

// maxPassphraseSize bounds a passphrase file: a passphrase is a line, not a document.
const maxPassphraseSize = 4 << 10

// ReadPassphraseFile reads a passphrase from a file only its owner may access, without the
// trailing newline an editor or echo leaves. Errors never include the file's contents.
func ReadPassphraseFile(path string) ([]byte, error) {
	data, err := readPrivateFile(path, "passphrase file", maxPassphraseSize)
	if err != nil {
		return nil, err
	}
	data = bytes.TrimRight(data, "\r\n")
	if len(data) == 0 {
		return nil, fmt.Errorf("%w (%s)", ErrEmptyPassphrase, path)
	}
	return data, nil
}

// readPrivateFile reads at most limit bytes of a file that only its owner may access. The mode
// is checked on the open file, so a swap between check and read cannot slip past it.
func readPrivateFile(path, what string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("wallet: opening %s: %w", what, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("wallet: %s: %w", what, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("wallet: %s %s is not a regular file", what, path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w (%s has mode %04o)", ErrKeyFilePermissions, path, st.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("wallet: reading %s: %w", what, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("wallet: %s %s is larger than %d bytes", what, path, limit)
	}
	return data, nil
}

// KeystoreAddress returns the address a keystore file declares, without decrypting it: enough
// to administer the wallet (budgets, approvals, journal) with no passphrase. The address is the
// file's claim; only LoadKeystore proves it.
func KeystoreAddress(path string) (common.Address, error) {
	data, err := readPrivateFile(path, "keystore", maxKeystoreSize)
	if err != nil {
		return common.Address{}, err
	}
	var k struct {
		Address string `json:"address"`
	}
	if json.Unmarshal(data, &k) != nil || !common.IsHexAddress(k.Address) {
		return common.Address{}, fmt.Errorf("%w (%s): no address", ErrNotKeystore, path)
	}
	return common.HexToAddress(k.Address), nil
}
