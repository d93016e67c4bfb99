package wallet

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"
)

// ErrKeyFilePermissions reports a key file that users other than its owner can read or write.
var ErrKeyFilePermissions = errors.New("wallet: key file is accessible to other users; chmod 600 it")

// LoadKeyFile reads a secp256k1 private key stored as hex (with or without 0x) in a file that
// only its owner may access. Errors never include the file's contents.
func LoadKeyFile(path string) (*ecdsa.PrivateKey, error) {
	data, err := readPrivateFile(path, "key file", maxKeyFileSize)
	if err != nil {
		return nil, err
	}
	key, err := ParseKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("wallet: key file %s: %w", path, err)
	}
	return key, nil
}

// maxKeyFileSize bounds a hex key file: 64 hex digits, a 0x, spaces and a newline.
const maxKeyFileSize = 256

// ParseKey reads a hex private key. Errors never include the input.
func ParseKey(s string) (*ecdsa.PrivateKey, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "0x")
	key, err := crypto.HexToECDSA(s)
	if err != nil {
		return nil, errors.New("not a 32-byte hex secp256k1 private key")
	}
	return key, nil
}

// WriteKeyFile stores key as hex in a new file readable only by its owner.
func WriteKeyFile(path string, key *ecdsa.PrivateKey) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("wallet: creating key file: %w", err)
	}
	_, err = fmt.Fprintf(f, "%x\n", crypto.FromECDSA(key))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
