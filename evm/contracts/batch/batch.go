// Code generated via abigen V2 - DO NOT EDIT.
// This file is a generated binding and any manual changes will be lost.

package batch

import (
	"bytes"
	"errors"
	"math/big"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// Reference imports to suppress errors if they are not otherwise used.
var (
	_ = bytes.Equal
	_ = errors.New
	_ = big.NewInt
	_ = common.Big1
	_ = types.BloomLookup
	_ = abi.ConvertType
)

// QuidBatchSettlerAuthorization is an auto generated low-level Go binding around an user-defined struct.
type QuidBatchSettlerAuthorization struct {
	From        common.Address
	To          common.Address
	Value       *big.Int
	ValidAfter  *big.Int
	ValidBefore *big.Int
	Nonce       [32]byte
	V           uint8
	R           [32]byte
	S           [32]byte
}

// QuidBatchSettlerMetaData contains all meta data concerning the QuidBatchSettler contract.
var QuidBatchSettlerMetaData = bind.MetaData{
	ABI: "[{\"inputs\":[],\"name\":\"NotAttempted\",\"type\":\"error\"},{\"anonymous\":false,\"inputs\":[{\"indexed\":true,\"internalType\":\"address\",\"name\":\"token\",\"type\":\"address\"},{\"indexed\":true,\"internalType\":\"address\",\"name\":\"from\",\"type\":\"address\"},{\"indexed\":true,\"internalType\":\"bytes32\",\"name\":\"nonce\",\"type\":\"bytes32\"},{\"indexed\":false,\"internalType\":\"bytes\",\"name\":\"reason\",\"type\":\"bytes\"}],\"name\":\"Failed\",\"type\":\"event\"},{\"inputs\":[],\"name\":\"ITEM_OVERHEAD_GAS\",\"outputs\":[{\"internalType\":\"uint256\",\"name\":\"\",\"type\":\"uint256\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"MAX_REASON_BYTES\",\"outputs\":[{\"internalType\":\"uint256\",\"name\":\"\",\"type\":\"uint256\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[],\"name\":\"REPORT_GAS\",\"outputs\":[{\"internalType\":\"uint256\",\"name\":\"\",\"type\":\"uint256\"}],\"stateMutability\":\"view\",\"type\":\"function\"},{\"inputs\":[{\"internalType\":\"address\",\"name\":\"token\",\"type\":\"address\"},{\"internalType\":\"uint64\",\"name\":\"perItemGas\",\"type\":\"uint64\"},{\"components\":[{\"internalType\":\"address\",\"name\":\"from\",\"type\":\"address\"},{\"internalType\":\"address\",\"name\":\"to\",\"type\":\"address\"},{\"internalType\":\"uint256\",\"name\":\"value\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"validAfter\",\"type\":\"uint256\"},{\"internalType\":\"uint256\",\"name\":\"validBefore\",\"type\":\"uint256\"},{\"internalType\":\"bytes32\",\"name\":\"nonce\",\"type\":\"bytes32\"},{\"internalType\":\"uint8\",\"name\":\"v\",\"type\":\"uint8\"},{\"internalType\":\"bytes32\",\"name\":\"r\",\"type\":\"bytes32\"},{\"internalType\":\"bytes32\",\"name\":\"s\",\"type\":\"bytes32\"}],\"internalType\":\"structQuidBatchSettler.Authorization[]\",\"name\":\"items\",\"type\":\"tuple[]\"}],\"name\":\"settle\",\"outputs\":[],\"stateMutability\":\"nonpayable\",\"type\":\"function\"}]",
	ID:  "QuidBatchSettler",
	Bin: "0x6080604052348015600e575f5ffd5b506105048061001c5f395ff3fe608060405234801561000f575f5ffd5b506004361061004a575f3560e01c80630ad12a7b1461004e57806321bb0670146100635780633cefc4041461007e578063c63a4e0a14610087575b5f5ffd5b61006161005c366004610337565b610090565b005b61006c61271081565b60405190815260200160405180910390f35b61006c61010081565b61006c61138881565b836001600160a01b03163b5f036100f95760405162461bcd60e51b815260206004820152602360248201527f517569644261746368536574746c65723a20746f6b656e20686173206e6f20636044820152626f646560e81b606482015260840160405180910390fd5b6040805161010080825261012082019092525f91602082018180368337019050506040805160048152602481019091526020810180516001600160e01b031663fd04290160e01b1790529091505f612710610155603f886103e7565b67ffffffffffffffff168767ffffffffffffffff166101749190610422565b61017e9190610422565b9050835f5b818110156102c6573687878381811061019e5761019e61043b565b905061012002019050611388826001856101b8919061044f565b6101c2919061044f565b6101cc9190610462565b6101d69085610422565b5a101561023e5760a08101356101ef6020830183610479565b6001600160a01b03168b6001600160a01b03167f0313a1cd79132c0dfc24c85beda9b33411ca5e34e0bcd4be70794244492d9c1b886040516102319190610499565b60405180910390a46102bd565b6102538a8a67ffffffffffffffff16836102d1565b6102bd57610260866102fe565b60a08101356102726020830183610479565b6001600160a01b03168b6001600160a01b03167f0313a1cd79132c0dfc24c85beda9b33411ca5e34e0bcd4be70794244492d9c1b896040516102b49190610499565b60405180910390a45b50600101610183565b505050505050505050565b6040516371f70b0760e11b8082525f916101208460048301375f5f610124835f8a8af19695505050505050565b3d61010081111561030e57506101005b808252805f602084013e5050565b80356001600160a01b0381168114610332575f5ffd5b919050565b5f5f5f5f6060858703121561034a575f5ffd5b6103538561031c565b9350602085013567ffffffffffffffff8116811461036f575f5ffd5b9250604085013567ffffffffffffffff81111561038a575f5ffd5b8501601f8101871361039a575f5ffd5b803567ffffffffffffffff8111156103b0575f5ffd5b876020610120830284010111156103c5575f5ffd5b949793965060200194505050565b634e487b7160e01b5f52601160045260245ffd5b5f67ffffffffffffffff83168061040c57634e487b7160e01b5f52601260045260245ffd5b8067ffffffffffffffff84160491505092915050565b80820180821115610435576104356103d3565b92915050565b634e487b7160e01b5f52603260045260245ffd5b81810381811115610435576104356103d3565b8082028115828204841417610435576104356103d3565b5f60208284031215610489575f5ffd5b6104928261031c565b9392505050565b602081525f82518060208401528060208501604085015e5f604082850101526040601f19601f8301168401019150509291505056fea2646970667358221220fe7f0235c68c328cf6f5d81c94f1e07f13f1fcb970921933f02279a24483785664736f6c63430008250033",
}

// QuidBatchSettler is an auto generated Go binding around an Ethereum contract.
type QuidBatchSettler struct {
	abi abi.ABI
}

// GetABI returns the ABI associated with this contract binding.
func (c *QuidBatchSettler) GetABI() abi.ABI {
	return c.abi
}

// NewQuidBatchSettler creates a new instance of QuidBatchSettler.
func NewQuidBatchSettler() *QuidBatchSettler {
	parsed, err := QuidBatchSettlerMetaData.ParseABI()
	if err != nil {
		panic(errors.New("invalid ABI: " + err.Error()))
	}
	return &QuidBatchSettler{abi: *parsed}
}

// Instance creates a wrapper for a deployed contract instance at the given address.
// Use this to create the instance object passed to abigen v2 library functions Call, Transact, etc.
func (c *QuidBatchSettler) Instance(backend bind.ContractBackend, addr common.Address) *bind.BoundContract {
	return bind.NewBoundContract(addr, c.abi, backend, backend, backend)
}

// PackITEMOVERHEADGAS is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x21bb0670.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function ITEM_OVERHEAD_GAS() view returns(uint256)
func (quidBatchSettler *QuidBatchSettler) PackITEMOVERHEADGAS() []byte {
	enc, err := quidBatchSettler.abi.Pack("ITEM_OVERHEAD_GAS")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackITEMOVERHEADGAS is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x21bb0670.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function ITEM_OVERHEAD_GAS() view returns(uint256)
func (quidBatchSettler *QuidBatchSettler) TryPackITEMOVERHEADGAS() ([]byte, error) {
	return quidBatchSettler.abi.Pack("ITEM_OVERHEAD_GAS")
}

// UnpackITEMOVERHEADGAS is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x21bb0670.
//
// Solidity: function ITEM_OVERHEAD_GAS() view returns(uint256)
func (quidBatchSettler *QuidBatchSettler) UnpackITEMOVERHEADGAS(data []byte) (*big.Int, error) {
	out, err := quidBatchSettler.abi.Unpack("ITEM_OVERHEAD_GAS", data)
	if err != nil {
		return new(big.Int), err
	}
	out0 := abi.ConvertType(out[0], new(big.Int)).(*big.Int)
	return out0, nil
}

// PackMAXREASONBYTES is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x3cefc404.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function MAX_REASON_BYTES() view returns(uint256)
func (quidBatchSettler *QuidBatchSettler) PackMAXREASONBYTES() []byte {
	enc, err := quidBatchSettler.abi.Pack("MAX_REASON_BYTES")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackMAXREASONBYTES is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x3cefc404.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function MAX_REASON_BYTES() view returns(uint256)
func (quidBatchSettler *QuidBatchSettler) TryPackMAXREASONBYTES() ([]byte, error) {
	return quidBatchSettler.abi.Pack("MAX_REASON_BYTES")
}

// UnpackMAXREASONBYTES is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0x3cefc404.
//
// Solidity: function MAX_REASON_BYTES() view returns(uint256)
func (quidBatchSettler *QuidBatchSettler) UnpackMAXREASONBYTES(data []byte) (*big.Int, error) {
	out, err := quidBatchSettler.abi.Unpack("MAX_REASON_BYTES", data)
	if err != nil {
		return new(big.Int), err
	}
	out0 := abi.ConvertType(out[0], new(big.Int)).(*big.Int)
	return out0, nil
}

// PackREPORTGAS is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xc63a4e0a.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function REPORT_GAS() view returns(uint256)
func (quidBatchSettler *QuidBatchSettler) PackREPORTGAS() []byte {
	enc, err := quidBatchSettler.abi.Pack("REPORT_GAS")
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackREPORTGAS is the Go binding used to pack the parameters required for calling
// the contract method with ID 0xc63a4e0a.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function REPORT_GAS() view returns(uint256)
func (quidBatchSettler *QuidBatchSettler) TryPackREPORTGAS() ([]byte, error) {
	return quidBatchSettler.abi.Pack("REPORT_GAS")
}

// UnpackREPORTGAS is the Go binding that unpacks the parameters returned
// from invoking the contract method with ID 0xc63a4e0a.
//
// Solidity: function REPORT_GAS() view returns(uint256)
func (quidBatchSettler *QuidBatchSettler) UnpackREPORTGAS(data []byte) (*big.Int, error) {
	out, err := quidBatchSettler.abi.Unpack("REPORT_GAS", data)
	if err != nil {
		return new(big.Int), err
	}
	out0 := abi.ConvertType(out[0], new(big.Int)).(*big.Int)
	return out0, nil
}

// PackSettle is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x0ad12a7b.  This method will panic if any
// invalid/nil inputs are passed.
//
// Solidity: function settle(address token, uint64 perItemGas, (address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)[] items) returns()
func (quidBatchSettler *QuidBatchSettler) PackSettle(token common.Address, perItemGas uint64, items []QuidBatchSettlerAuthorization) []byte {
	enc, err := quidBatchSettler.abi.Pack("settle", token, perItemGas, items)
	if err != nil {
		panic(err)
	}
	return enc
}

// TryPackSettle is the Go binding used to pack the parameters required for calling
// the contract method with ID 0x0ad12a7b.  This method will return an error
// if any inputs are invalid/nil.
//
// Solidity: function settle(address token, uint64 perItemGas, (address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)[] items) returns()
func (quidBatchSettler *QuidBatchSettler) TryPackSettle(token common.Address, perItemGas uint64, items []QuidBatchSettlerAuthorization) ([]byte, error) {
	return quidBatchSettler.abi.Pack("settle", token, perItemGas, items)
}

// QuidBatchSettlerFailed represents a Failed event raised by the QuidBatchSettler contract.
type QuidBatchSettlerFailed struct {
	Token  common.Address
	From   common.Address
	Nonce  [32]byte
	Reason []byte
	Raw    *types.Log // Blockchain specific contextual infos
}

const QuidBatchSettlerFailedEventName = "Failed"

// ContractEventName returns the user-defined event name.
func (QuidBatchSettlerFailed) ContractEventName() string {
	return QuidBatchSettlerFailedEventName
}

// UnpackFailedEvent is the Go binding that unpacks the event data emitted
// by contract.
//
// Solidity: event Failed(address indexed token, address indexed from, bytes32 indexed nonce, bytes reason)
func (quidBatchSettler *QuidBatchSettler) UnpackFailedEvent(log *types.Log) (*QuidBatchSettlerFailed, error) {
	event := "Failed"
	if len(log.Topics) == 0 {
		return nil, bind.ErrNoEventSignature
	}
	if log.Topics[0] != quidBatchSettler.abi.Events[event].ID {
		return nil, bind.ErrEventSignatureMismatch
	}
	out := new(QuidBatchSettlerFailed)
	if len(log.Data) > 0 {
		if err := quidBatchSettler.abi.UnpackIntoInterface(out, event, log.Data); err != nil {
			return nil, err
		}
	}
	var indexed abi.Arguments
	for _, arg := range quidBatchSettler.abi.Events[event].Inputs {
		if arg.Indexed {
			indexed = append(indexed, arg)
		}
	}
	if err := abi.ParseTopics(out, indexed, log.Topics[1:]); err != nil {
		return nil, err
	}
	out.Raw = log
	return out, nil
}

// UnpackError attempts to decode the provided error data using user-defined
// error definitions.
func (quidBatchSettler *QuidBatchSettler) UnpackError(raw []byte) (any, error) {
	if bytes.Equal(raw[:4], quidBatchSettler.abi.Errors["NotAttempted"].ID.Bytes()[:4]) {
		return quidBatchSettler.UnpackNotAttemptedError(raw[4:])
	}
	return nil, errors.New("Unknown error")
}

// QuidBatchSettlerNotAttempted represents a NotAttempted error raised by the QuidBatchSettler contract.
type QuidBatchSettlerNotAttempted struct {
}

// ErrorID returns the hash of canonical representation of the error's signature.
//
// Solidity: error NotAttempted()
func QuidBatchSettlerNotAttemptedErrorID() common.Hash {
	return common.HexToHash("0xfd042901647acf86099935ce47735f64f13046d1db39c7a3d23ac218011ca768")
}

// UnpackNotAttemptedError is the Go binding used to decode the provided
// error data into the corresponding Go error struct.
//
// Solidity: error NotAttempted()
func (quidBatchSettler *QuidBatchSettler) UnpackNotAttemptedError(raw []byte) (*QuidBatchSettlerNotAttempted, error) {
	out := new(QuidBatchSettlerNotAttempted)
	if err := quidBatchSettler.abi.UnpackIntoInterface(out, "NotAttempted", raw); err != nil {
		return nil, err
	}
	return out, nil
}
