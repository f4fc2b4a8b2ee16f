#include "runners/checkpoint/torch_zip_reader.h"

#include <cstring>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "harness/error.h"

namespace embeval {
namespace {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  enum Kind { NONE, BOOL, INT, FLOAT, STR, TUPLE, LIST, DICT, GLOBAL, STORAGE, TENSOR } kind = NONE;
  int64_t i = 0;
  double f = 0;
  std::string s;  // STR, GLOBAL ("module.name"), STORAGE (dtype name)
  std::vector<ValuePtr> items;
  std::vector<std::pair<ValuePtr, ValuePtr>> dict;
  at::Tensor tensor;  // TENSOR; STORAGE: the flat storage
};

ValuePtr make(Value::Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

struct StorageType {
  const char* name;
  at::ScalarType type;
};
const StorageType STORAGE_TYPES[] = {{"FloatStorage", at::kFloat},     {"HalfStorage", at::kHalf},
                                     {"BFloat16Storage", at::kBFloat16}, {"DoubleStorage", at::kDouble},
                                     {"LongStorage", at::kLong},        {"IntStorage", at::kInt},
                                     {"ShortStorage", at::kShort},      {"CharStorage", at::kChar},
                                     {"ByteStorage", at::kByte},        {"BoolStorage", at::kBool}};

class Unpickler {
 public:
  Unpickler(const std::string& where, const std::vector<char>& bytes, caffe2::serialize::PyTorchStreamReader& zip)
      : where_(where), data_(bytes), zip_(zip) {}

  ValuePtr run() {
    for (;;) {
      const uint8_t op = u8();
      switch (op) {
        case 0x80: u8(); break;                // PROTO
        case 0x95: take(8); break;             // FRAME
        case '(': marks_.push_back(stack_.size()); break;
        case ')': push(make(Value::TUPLE)); break;
        case ']': push(make(Value::LIST)); break;
        case '}': push(make(Value::DICT)); break;
        case 'N': push(make(Value::NONE)); break;
        case 0x88: push(integer(1, Value::BOOL)); break;
        case 0x89: push(integer(0, Value::BOOL)); break;
        case 'K': push(integer(u8())); break;
        case 'M': push(integer(static_cast<int64_t>(le(2)))); break;
        case 'J': push(integer(static_cast<int32_t>(le(4)))); break;
        case 0x8a: {  // LONG1: little-endian two's complement
          const uint8_t n = u8();
          if (n > 8) bad("integer wider than 64 bits");
          uint64_t x = le(n);
          if (n > 0 && n < 8 && (x >> (8 * n - 1)) & 1) x |= ~uint64_t{0} << (8 * n);
          push(integer(static_cast<int64_t>(x)));
          break;
        }
        case 'G': {  // BINFLOAT: big-endian double
          uint64_t x = 0;
          const char* p = take(8);
          for (int k = 0; k < 8; ++k) x = (x << 8) | static_cast<uint8_t>(p[k]);
          auto v = make(Value::FLOAT);
          std::memcpy(&v->f, &x, 8);
          push(v);
          break;
        }
        case 'X': push(str(le(4))); break;     // BINUNICODE
        case 0x8c: push(str(u8())); break;     // SHORT_BINUNICODE
        case 'U': push(str(u8())); break;      // SHORT_BINSTRING
        case 'T': push(str(le(4))); break;     // BINSTRING
        case 'C': push(str(u8())); break;      // SHORT_BINBYTES
        case 'B': push(str(le(4))); break;     // BINBYTES
        case 'c': {                            // GLOBAL module\nname\n
          std::string module = line(), name = line();
          auto v = make(Value::GLOBAL);
          v->s = module + "." + name;
          note_tensor_name(v->s);
          push(v);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          ValuePtr name = pop(), module = pop();
          auto v = make(Value::GLOBAL);
          v->s = module->s + "." + name->s;
          note_tensor_name(v->s);
          push(v);
          break;
        }
        case 'q': memo_[u8()] = top(); break;
        case 'r': memo_[static_cast<uint32_t>(le(4))] = top(); break;
        case 0x94: memo_[static_cast<uint32_t>(memo_.size())] = top(); break;
        case 'h': push(get(u8())); break;
        case 'j': push(get(static_cast<uint32_t>(le(4)))); break;
        case 't': {
          auto v = make(Value::TUPLE);
          v->items = pop_mark();
          push(v);
          break;
        }
        case 'l': {
          auto v = make(Value::LIST);
          v->items = pop_mark();
          push(v);
          break;
        }
        case 'd': {
          auto v = make(Value::DICT);
          std::vector<ValuePtr> kv = pop_mark();
          for (size_t k = 0; k + 1 < kv.size(); k += 2) v->dict.emplace_back(kv[k], kv[k + 1]);
          push(v);
          break;
        }
        case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
          auto v = make(Value::TUPLE);
          v->items.resize(op - 0x84);
          for (size_t k = v->items.size(); k-- > 0;) v->items[k] = pop();
          push(v);
          break;
        }
        case 'Q': push(storage(pop())); break;  // BINPERSID
        case 'R': case 0x81: {                  // REDUCE, NEWOBJ
          ValuePtr args = pop(), callable = pop();
          push(call(callable, args));
          break;
        }
        case 'b': pop(); break;  // BUILD: object state (OrderedDict._metadata, Parameter hooks): not needed
        case 's': {
          ValuePtr v = pop(), k = pop();
          dict_top()->dict.emplace_back(k, v);
          break;
        }
        case 'u': {
          std::vector<ValuePtr> kv = pop_mark();
          ValuePtr d = dict_top();
          for (size_t k = 0; k + 1 < kv.size(); k += 2) d->dict.emplace_back(kv[k], kv[k + 1]);
          break;
        }
        case 'a': {
          ValuePtr v = pop();
          list_top()->items.push_back(v);
          break;
        }
        case 'e': {
          std::vector<ValuePtr> vs = pop_mark();
          ValuePtr l = list_top();
          l->items.insert(l->items.end(), vs.begin(), vs.end());
          break;
        }
        case '.': return pop();  // STOP
        default: bad(fmt::format("unsupported pickle opcode 0x{:02x} at byte {}", op, pos_ - 1));
      }
    }
  }

 private:
  [[noreturn]] void bad(const std::string& what) const {
    if (!tensor_name_.empty()) fail("{}: data.pkl: tensor \"{}\": {}", where_, tensor_name_, what);
    fail("{}: data.pkl: {}", where_, what);
  }

  // A state dict's pickle pushes each key right before the global that
  // rebuilds its tensor: errors while that tensor is built name it.
  void note_tensor_name(const std::string& global) {
    if (global.rfind("torch._utils._rebuild_tensor", 0) == 0 && !stack_.empty() && stack_.back()->kind == Value::STR)
      tensor_name_ = stack_.back()->s;
  }

  const char* take(size_t n) {
    if (n > data_.size() - pos_) bad("truncated pickle");
    const char* p = data_.data() + pos_;
    pos_ += n;
    return p;
  }
  uint8_t u8() { return static_cast<uint8_t>(*take(1)); }
  uint64_t le(size_t n) {
    const char* p = take(n);
    uint64_t x = 0;
    for (size_t k = n; k-- > 0;) x = (x << 8) | static_cast<uint8_t>(p[k]);
    return x;
  }
  std::string line() {
    size_t end = pos_;
    while (end < data_.size() && data_[end] != '\n') ++end;
    if (end == data_.size()) bad("truncated pickle");
    std::string s(data_.data() + pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }
  ValuePtr integer(int64_t x, Value::Kind k = Value::INT) {
    auto v = make(k);
    v->i = x;
    return v;
  }
  ValuePtr str(uint64_t n) {
    auto v = make(Value::STR);
    const char* p = take(n);
    v->s.assign(p, n);
    return v;
  }
  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr top() {
    if (stack_.empty()) bad("stack underflow");
    return stack_.back();
  }
  ValuePtr pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) bad("stack underflow");
    ValuePtr v = stack_.back();
    stack_.pop_back();
    return v;
  }
  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty()) bad("no MARK on the stack");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> out(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return out;
  }
  ValuePtr get(uint32_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) bad(fmt::format("memo key {} not set", k));
    return it->second;
  }
  ValuePtr dict_top() {
    ValuePtr d = top();
    if (d->kind != Value::DICT) bad("SETITEM on a non-dict");
    return d;
  }
  ValuePtr list_top() {
    ValuePtr l = top();
    if (l->kind != Value::LIST) bad("APPEND on a non-list");
    return l;
  }

  // ('storage', torch.FloatStorage, key, location, numel) -> the storage's bytes as a flat tensor.
  ValuePtr storage(const ValuePtr& pid) {
    const auto& t = pid->items;
    if (pid->kind != Value::TUPLE || t.size() < 5 || t[0]->kind != Value::STR || t[0]->s != "storage" ||
        t[1]->kind != Value::GLOBAL || t[2]->kind != Value::STR || t[4]->kind != Value::INT)
      bad("persistent id is not ('storage', type, key, location, numel)");
    const std::string type = t[1]->s.substr(t[1]->s.rfind('.') + 1);
    const std::string& key = t[2]->s;
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return cached->second;
    const StorageType* st = nullptr;
    for (const auto& s : STORAGE_TYPES)
      if (type == s.name) st = &s;
    if (!st) bad(fmt::format("storage {} has unsupported type {}", key, t[1]->s));
    const int64_t numel = t[4]->i;
    const std::string record = "data/" + key;
    if (numel < 0 || !zip_.hasRecord(record)) bad(fmt::format("storage record {} is missing", record));
    auto [ptr, size] = zip_.getRecord(record);
    const size_t need = static_cast<size_t>(numel) * c10::elementSize(st->type);
    if (size != need) bad(fmt::format("storage {} holds {} bytes; {} x {} needs {}", record, size, numel, type, need));
    auto v = make(Value::STORAGE);
    v->tensor = at::empty({numel}, at::TensorOptions().dtype(st->type));
    if (need) std::memcpy(v->tensor.data_ptr(), ptr.get(), need);
    storages_[key] = v;
    return v;
  }

  std::vector<int64_t> ints(const ValuePtr& v, const char* what) {
    if (v->kind != Value::TUPLE) bad(fmt::format("tensor {} is not a tuple", what));
    std::vector<int64_t> out;
    for (const auto& x : v->items) {
      if (x->kind != Value::INT || x->i < 0) bad(fmt::format("tensor {} must hold non-negative integers", what));
      out.push_back(x->i);
    }
    return out;
  }

  ValuePtr call(const ValuePtr& callable, const ValuePtr& args) {
    if (callable->kind != Value::GLOBAL) bad("REDUCE on something that is not a global");
    const std::string& f = callable->s;
    if (f == "collections.OrderedDict") return make(Value::DICT);
    if (args->kind != Value::TUPLE) bad(fmt::format("{} called without an argument tuple", f));
    const auto& a = args->items;
    if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") {
      if (a.size() < 4 || a[0]->kind != Value::STORAGE || a[1]->kind != Value::INT)
        bad(fmt::format("{} arguments are not (storage, offset, size, stride, ...)", f));
      const at::Tensor& s = a[0]->tensor;
      std::vector<int64_t> size = ints(a[2], "size"), stride = ints(a[3], "stride");
      const int64_t offset = a[1]->i;
      if (size.size() != stride.size()) bad("tensor size and stride differ in length");
      // The view must stay inside its storage.
      // Checked arithmetic: crafted sizes and strides must not overflow into range.
      int64_t last = offset, numel = 1;
      bool overflow = false;
      for (size_t k = 0; k < size.size(); ++k) {
        int64_t step = 0;
        overflow |= __builtin_mul_overflow(size[k] == 0 ? 0 : size[k] - 1, stride[k], &step);
        overflow |= __builtin_add_overflow(last, step, &last);
        overflow |= __builtin_mul_overflow(numel, size[k], &numel);
      }
      if (overflow && numel != 0) bad(fmt::format("tensor view of size [{}] overflows", fmt::join(size, ", ")));
      if (offset < 0 || (numel > 0 && last >= s.numel()))
        bad(fmt::format("tensor view (offset {}) runs past its storage of {} elements", offset, s.numel()));
      auto v = make(Value::TENSOR);
      v->tensor = numel == 0 ? at::empty(size, s.options()) : s.as_strided(size, stride, offset).contiguous();
      tensor_name_.clear();
      return v;
    }
    // libtorch's own pickle_save tags containers with their static type.
    if (f == "torch.jit._pickle.restore_type_tag") {
      if (a.empty()) bad(fmt::format("{} without a value", f));
      return a[0];
    }
    if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state") {
      if (a.empty() || a[0]->kind != Value::TENSOR) bad(fmt::format("{} without a tensor", f));
      return a[0];
    }
    bad(fmt::format("unsupported global {} (embeval reads state dicts of tensors)", f));
  }

  std::string where_;
  const std::vector<char>& data_;
  caffe2::serialize::PyTorchStreamReader& zip_;
  size_t pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, ValuePtr> memo_;
  std::map<std::string, ValuePtr> storages_;
  std::string tensor_name_;  // the tensor being rebuilt, for errors
};

}  // namespace

void read_torch_zip_state_dict(const std::filesystem::path& file,
                               const std::function<void(const std::string&, at::Tensor)>& on_tensor) {
  const std::string where = file.string();
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> zip;
  std::vector<char> pickle;
  try {
    zip = std::make_unique<caffe2::serialize::PyTorchStreamReader>(where);
    if (!zip->hasRecord("data.pkl")) fail("{}: no data.pkl in the archive; not a torch.save file", where);
    auto [ptr, size] = zip->getRecord("data.pkl");
    const char* p = static_cast<const char*>(ptr.get());
    pickle.assign(p, p + size);
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    fail("{}: cannot read the zip archive ({})", where, msg.substr(0, msg.find('\n')));
  }
  ValuePtr root;
  try {
    root = Unpickler(where, pickle, *zip).run();
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    fail("{}: cannot read a storage ({})", where, msg.substr(0, msg.find('\n')));
  }
  if (root->kind != Value::DICT) fail("{}: expected a state_dict (a dict of tensors) at the top", where);
  for (const auto& [k, v] : root->dict) {
    if (k->kind != Value::STR) fail("{}: state_dict key that is not a string", where);
    if (v->kind == Value::TENSOR) on_tensor(k->s, v->tensor);
  }
}

}  // namespace embeval
