package batch_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quidpay/quid/evm/contracts/batch"
)

// TestArtifactsMatchBindings fails when the committed artifacts, the generated bindings and the
// Solidity source disagree, which happens when one is edited without running build.sh. A real
// recompile needs npm, so the source is checked against the hash build.sh recorded for it.
func TestArtifactsMatchBindings(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "artifacts")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	bin := strings.TrimSpace(string(read("QuidBatchSettler.bin")))
	if want := strings.TrimPrefix(batch.QuidBatchSettlerMetaData.Bin, "0x"); bin != want {
		t.Error("artifacts/QuidBatchSettler.bin differs from the bytecode in batch.go: run evm/contracts/build.sh")
	}

	var fileABI, boundABI any
	if err := json.Unmarshal(read("QuidBatchSettler.abi.json"), &fileABI); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(batch.QuidBatchSettlerMetaData.ABI), &boundABI); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(fileABI)
	b, _ := json.Marshal(boundABI)
	// abigen strips the spaces from the ABI it embeds, which turns solc's internalType
	// "struct QuidBatchSettler.Authorization[]" into "structQuidBatchSettler.Authorization[]".
	// No name in an ABI can contain a space, so comparing without spaces loses nothing.
	a = bytes.ReplaceAll(a, []byte(" "), nil)
	if !bytes.Equal(a, b) {
		t.Error("artifacts/QuidBatchSettler.abi.json differs from the ABI in batch.go: run evm/contracts/build.sh")
	}

	var build struct {
		Compiler     string `json:"compiler"`
		SourceSHA256 string `json:"sourceSha256"`
		Settings     struct {
			EVMVersion string `json:"evmVersion"`
		} `json:"settings"`
	}
	if err := json.Unmarshal(read("QuidBatchSettler.build.json"), &build); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join("..", "QuidBatchSettler.sol"))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(src); hex.EncodeToString(sum[:]) != build.SourceSHA256 {
		t.Error("QuidBatchSettler.sol changed since the artifacts were built: run evm/contracts/build.sh")
	}
	if !strings.HasPrefix(build.Compiler, "solc 0.8.37+") || build.Settings.EVMVersion != "cancun" {
		t.Errorf("artifacts built with %s for %s, want solc 0.8.37 for cancun", build.Compiler, build.Settings.EVMVersion)
	}
}

// TestSettleSelector pins settle to the signature evm/batch.go encodes.
func TestSettleSelector(t *testing.T) {
	t.Parallel()
	m, ok := batch.NewQuidBatchSettler().GetABI().Methods["settle"]
	if !ok {
		t.Fatal("no settle method")
	}
	const want = "settle(address,uint64,(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)[])"
	if m.Sig != want {
		t.Errorf("settle is %s, want %s", m.Sig, want)
	}
}
