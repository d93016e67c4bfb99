package wallet_test

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/wallet"
)

// keystoreTestScrypt is as cheap as scrypt allows: tests check the format, not the cost.
var keystoreTestScrypt = wallet.ScryptParams{N: 2, P: 1}

// The Web3 Secret Storage specification's PBKDF2 test vector, which every Ethereum keystore
// implementation decrypts to the same key.
const (
	specKeystore = `{"crypto":{"cipher":"aes-128-ctr","cipherparams":{"iv":"6087dab2f9fdbbfaddc31a909735c1e6"},` +
		`"ciphertext":"5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46","kdf":"pbkdf2",` +
		`"kdfparams":{"c":262144,"dklen":32,"prf":"hmac-sha256","salt":"ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd"},` +
		`"mac":"517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2"},"id":"3198bc9c-6672-5ab3-d995-4942343ae5b6","version":3}`
	specPassphrase = "testpassword"
	specKey        = "7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d"
)

func keystoreFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadKeystore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, _ := crypto.GenerateKey()
	hexKey := fmt.Sprintf("%x", crypto.FromECDSA(key))
	pass := "correct horse battery staple"
	ours := filepath.Join(dir, "ours.json")
	if err := wallet.WriteKeystore(ours, key, []byte(pass), keystoreTestScrypt); err != nil {
		t.Fatal(err)
	}
	oursJSON, err := os.ReadFile(ours)
	if err != nil {
		t.Fatal(err)
	}
	// go-ethereum's own writer, as geth account new would leave it.
	gethAcct, err := keystore.StoreKey(filepath.Join(dir, "geth"), pass, 2, 1)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		path string
		pass string
		want common.Address
		err  error
	}{
		{"written by WriteKeystore", ours, pass, crypto.PubkeyToAddress(key.PublicKey), nil},
		{"written by go-ethereum", gethAcct.URL.Path, pass, gethAcct.Address, nil},
		{"the specification's vector", keystoreFile(t, dir, "spec.json", specKeystore, 0o600), specPassphrase, crypto.PubkeyToAddress(mustKey(t, specKey).PublicKey), nil},
		{"wrong passphrase", ours, pass + "!", common.Address{}, wallet.ErrBadPassphrase},
		{"empty passphrase", ours, "", common.Address{}, wallet.ErrBadPassphrase},
		{"ciphertext altered", keystoreFile(t, dir, "altered.json", flipCiphertext(t, string(oursJSON)), 0o600), pass, common.Address{}, wallet.ErrBadPassphrase},
		{"group readable", keystoreFile(t, dir, "g.json", string(oursJSON), 0o640), pass, common.Address{}, wallet.ErrKeyFilePermissions},
		{"world readable", keystoreFile(t, dir, "w.json", string(oursJSON), 0o604), pass, common.Address{}, wallet.ErrKeyFilePermissions},
		{"a hex key, not a keystore", keystoreFile(t, dir, "hex", hexKey, 0o600), pass, common.Address{}, wallet.ErrNotKeystore},
		{"truncated", keystoreFile(t, dir, "trunc.json", string(oursJSON[:len(oursJSON)/2]), 0o600), pass, common.Address{}, wallet.ErrNotKeystore},
		{"huge", keystoreFile(t, dir, "huge.json", strings.Repeat(" ", 100<<10), 0o600), pass, common.Address{}, nil},
		{"a directory", dir, pass, common.Address{}, nil},
		{"missing", filepath.Join(dir, "nope"), pass, common.Address{}, os.ErrNotExist},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := wallet.LoadKeystore(tc.path, []byte(tc.pass))
			if tc.want == (common.Address{}) {
				if err == nil {
					t.Fatal("loaded")
				}
				if tc.err != nil && !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				msg := err.Error()
				if strings.Contains(msg, hexKey[:16]) || (tc.pass != "" && strings.Contains(msg, tc.pass)) || strings.Contains(msg, `"ciphertext"`) {
					t.Fatalf("the error carries a secret or the file: %s", msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if crypto.PubkeyToAddress(got.PublicKey) != tc.want {
				t.Fatalf("loaded %s, want %s", crypto.PubkeyToAddress(got.PublicKey), tc.want)
			}
		})
	}
}

func mustKey(t *testing.T, h string) *ecdsa.PrivateKey {
	t.Helper()
	k, err := wallet.ParseKey(h)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// flipCiphertext changes one hex digit of the ciphertext, as bit rot or an attacker would.
func flipCiphertext(t *testing.T, js string) string {
	t.Helper()
	i := strings.Index(js, `"ciphertext":"`)
	if i < 0 {
		t.Fatal("no ciphertext")
	}
	i += len(`"ciphertext":"`)
	b := []byte(js)
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	return string(b)
}

func TestWriteKeystore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, _ := crypto.GenerateKey()
	p := filepath.Join(dir, "k.json")
	if err := wallet.WriteKeystore(p, key, []byte("pw"), keystoreTestScrypt); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", st.Mode(), err)
	}
	raw, _ := os.ReadFile(p)
	if strings.Contains(string(raw), fmt.Sprintf("%x", crypto.FromECDSA(key))) {
		t.Fatal("the keystore holds the key in clear")
	}
	if err := wallet.WriteKeystore(p, key, []byte("other"), keystoreTestScrypt); err == nil {
		t.Fatal("WriteKeystore overwrote an existing keystore")
	}
	if k, err := wallet.LoadKeystore(p, []byte("pw")); err != nil || !k.Equal(key) {
		t.Fatalf("overwritten or unreadable: %v", err)
	}
	if err := wallet.WriteKeystore(filepath.Join(dir, "empty.json"), key, nil, keystoreTestScrypt); !errors.Is(err, wallet.ErrEmptyPassphrase) {
		t.Fatalf("empty passphrase: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "empty.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused keystore left a file behind")
	}

	// Many loads at once of one keystore: decryption shares nothing mutable.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if k, err := wallet.LoadKeystore(p, []byte("pw")); err != nil || !k.Equal(key) {
				t.Errorf("concurrent load: %v", err)
			}
		})
	}
	wg.Wait()
}

func TestReadPassphraseFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cases := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
		err     error
	}{
		{"plain", "hunter2", 0o600, "hunter2", nil},
		{"trailing newline", "hunter2\n", 0o400, "hunter2", nil},
		{"CRLF", "hunter2\r\n", 0o600, "hunter2", nil},
		{"inner and leading spaces kept", "  two words ", 0o600, "  two words ", nil},
		{"empty", "\n", 0o600, "", wallet.ErrEmptyPassphrase},
		{"group readable", "hunter2", 0o640, "", wallet.ErrKeyFilePermissions},
		{"world readable", "hunter2", 0o644, "", wallet.ErrKeyFilePermissions},
		{"too long", strings.Repeat("x", 5000), 0o600, "", nil},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := keystoreFile(t, dir, fmt.Sprint(i), tc.content, tc.mode)
			got, err := wallet.ReadPassphraseFile(p)
			if tc.want == "" {
				if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "xxxx") {
					t.Fatalf("the error quotes the passphrase: %v", err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
}

func TestKeystoreAddress(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, _ := crypto.GenerateKey()
	p := filepath.Join(dir, "k.json")
	if err := wallet.WriteKeystore(p, key, []byte("pw"), keystoreTestScrypt); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(p)
	cases := []struct {
		name string
		path string
		want common.Address
		err  error
	}{
		{"read without the passphrase", p, crypto.PubkeyToAddress(key.PublicKey), nil},
		{"the specification's vector has none", keystoreFile(t, dir, "spec.json", specKeystore, 0o600), common.Address{}, wallet.ErrNotKeystore},
		{"group readable", keystoreFile(t, dir, "g.json", string(raw), 0o640), common.Address{}, wallet.ErrKeyFilePermissions},
		{"not JSON", keystoreFile(t, dir, "x", "garbage", 0o600), common.Address{}, wallet.ErrNotKeystore},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := wallet.KeystoreAddress(tc.path)
			if got != tc.want || (tc.err == nil) != (err == nil) || (tc.err != nil && !errors.Is(err, tc.err)) {
				t.Fatalf("%s, %v", got.Hex(), err)
			}
		})
	}
}
