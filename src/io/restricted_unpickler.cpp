// Restricted unpickler: a bounded pickle stack machine for torch state dicts. Only allow-listed
// globals are resolved (to tags, never to code); REDUCE applies only the three allow-listed
// callables, implemented here natively. Values form an acyclic graph (a container is sealed once
// placed inside another), so no structure can recurse, loop or nest deeper than kMaxDepth.
#include "restricted_unpickler.h"

#include <cstring>
#include <limits>
#include <memory>
#include <unordered_map>

#include "perceiver/core/error.h"

namespace perceiver::io::pickle {
namespace {

constexpr size_t kMaxStack = 1u << 20;
constexpr size_t kMaxMarks = 1u << 16;
constexpr size_t kMaxMemo = 1u << 22;
constexpr size_t kMaxValues = 1u << 22;
constexpr int kMaxDepth = 64;
constexpr size_t kMaxRank = 64;
constexpr size_t kMaxGlobalName = 256;
constexpr int64_t kMaxExpandedNumel = int64_t{1} << 28;

constexpr StorageTypeInfo kStorageTypes[] = {
    {StorageType::kFloat, "FloatStorage", 4, true},
    {StorageType::kHalf, "HalfStorage", 2, true},
    {StorageType::kBFloat16, "BFloat16Storage", 2, true},
    {StorageType::kDouble, "DoubleStorage", 8, true},
    {StorageType::kLong, "LongStorage", 8, false},
    {StorageType::kInt, "IntStorage", 4, false},
    {StorageType::kShort, "ShortStorage", 2, false},
    {StorageType::kChar, "CharStorage", 1, false},
    {StorageType::kByte, "ByteStorage", 1, false},
    {StorageType::kBool, "BoolStorage", 1, false},
};

enum class Kind : uint8_t { kNone, kBool, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal,
                            kStorage, kTensor };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kNone: return "None";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kTuple: return "tuple";
    case Kind::kList: return "list";
    case Kind::kDict: return "dict";
    case Kind::kGlobal: return "global";
    case Kind::kStorage: return "storage";
    case Kind::kTensor: return "tensor";
  }
  return "?";
}

enum class Callable : uint8_t { kOrderedDict, kRebuildTensorV2, kRebuildParameter, kStorageClass };

struct Value {
  Kind kind = Kind::kNone;
  bool ordered = false;  // dict made by collections.OrderedDict (BUILD allowed)
  bool sealed = false;   // placed inside another value: no longer mutable
  int depth = 1;
  int64_t i = 0;         // bool / int
  double f = 0;          // float
  std::string s;         // str, or a global's "module.name"
  std::vector<std::shared_ptr<Value>> items;  // tuple, list; dict as key, value, key, value...
  Callable callable = Callable::kOrderedDict;  // global
  StorageType storage_type = StorageType::kFloat;  // global storage class
  std::shared_ptr<const StorageRef> storage;   // storage
  std::shared_ptr<const TensorRef> tensor;     // tensor
};
using ValuePtr = std::shared_ptr<Value>;

struct OpcodeName {
  uint8_t code;
  const char* name;
};

// Every pickle opcode (protocols 0-5), for naming refused ones in errors.
constexpr OpcodeName kOpcodeNames[] = {
    {'(', "MARK"}, {'.', "STOP"}, {'0', "POP"}, {'1', "POP_MARK"}, {'2', "DUP"},
    {'F', "FLOAT"}, {'I', "INT"}, {'J', "BININT"}, {'K', "BININT1"}, {'L', "LONG"},
    {'M', "BININT2"}, {'N', "NONE"}, {'P', "PERSID"}, {'Q', "BINPERSID"}, {'R', "REDUCE"},
    {'S', "STRING"}, {'T', "BINSTRING"}, {'U', "SHORT_BINSTRING"}, {'V', "UNICODE"},
    {'X', "BINUNICODE"}, {'a', "APPEND"}, {'b', "BUILD"}, {'c', "GLOBAL"}, {'d', "DICT"},
    {'}', "EMPTY_DICT"}, {'e', "APPENDS"}, {'g', "GET"}, {'h', "BINGET"}, {'i', "INST"},
    {'j', "LONG_BINGET"}, {'l', "LIST"}, {']', "EMPTY_LIST"}, {'o', "OBJ"}, {'p', "PUT"},
    {'q', "BINPUT"}, {'r', "LONG_BINPUT"}, {'s', "SETITEM"}, {'t', "TUPLE"}, {')', "EMPTY_TUPLE"},
    {'u', "SETITEMS"}, {'G', "BINFLOAT"}, {0x80, "PROTO"}, {0x81, "NEWOBJ"}, {0x82, "EXT1"},
    {0x83, "EXT2"}, {0x84, "EXT4"}, {0x85, "TUPLE1"}, {0x86, "TUPLE2"}, {0x87, "TUPLE3"},
    {0x88, "NEWTRUE"}, {0x89, "NEWFALSE"}, {0x8a, "LONG1"}, {0x8b, "LONG4"}, {'B', "BINBYTES"},
    {'C', "SHORT_BINBYTES"}, {0x8c, "SHORT_BINUNICODE"}, {0x8d, "BINUNICODE8"},
    {0x8e, "BINBYTES8"}, {0x8f, "EMPTY_SET"}, {0x90, "ADDITEMS"}, {0x91, "FROZENSET"},
    {0x92, "NEWOBJ_EX"}, {0x93, "STACK_GLOBAL"}, {0x94, "MEMOIZE"}, {0x95, "FRAME"},
    {0x96, "BYTEARRAY8"}, {0x97, "NEXT_BUFFER"}, {0x98, "READONLY_BUFFER"},
};

std::string opcode_str(uint8_t op) {
  static const char* hex = "0123456789abcdef";
  std::string s = "0x";
  s += hex[op >> 4];
  s += hex[op & 15];
  for (const auto& o : kOpcodeNames)
    if (o.code == op) return s + " (" + o.name + ")";
  return s + " (unknown opcode)";
}

std::string allowed_globals() {
  std::string s = "collections.OrderedDict, torch._utils._rebuild_tensor_v2, "
                  "torch._utils._rebuild_parameter";
  for (const auto& t : kStorageTypes) s += std::string(", torch.") + t.name;
  return s;
}

// A printable, bounded rendering of an untrusted name for error messages.
std::string printable(const std::string& s) {
  std::string out;
  for (const char c : s.substr(0, kMaxGlobalName)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : '?';
  }
  return s.size() > kMaxGlobalName ? out + "..." : out;
}

class Unpickler {
 public:
  Unpickler(const std::string& bytes, const std::string& where)
      : p_(reinterpret_cast<const uint8_t*>(bytes.data())), n_(bytes.size()), where_(where) {}

  ValuePtr run();

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0, op_pos_ = 0;
  uint8_t op_ = 0;
  std::string where_;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
  size_t values_ = 0;

  template <typename... Args> [[noreturn]] void fail(const Args&... args) const {
    throw_error("[torch_pickle] ", where_, ": ", args..., " (opcode ", opcode_str(op_),
                " at byte ", op_pos_, ")");
  }

  // --- input ---
  const uint8_t* take(uint64_t count) {
    if (count > n_ - pos_)
      fail("pickle is truncated: needs ", count, " more bytes, only ", n_ - pos_, " left");
    const uint8_t* at = p_ + pos_;
    pos_ += static_cast<size_t>(count);
    return at;
  }
  uint64_t uint_le(int bytes) {
    const uint8_t* b = take(static_cast<uint64_t>(bytes));
    uint64_t v = 0;
    for (int k = bytes - 1; k >= 0; --k) v = (v << 8) | b[k];
    return v;
  }
  std::string text(uint64_t count) {
    const uint8_t* b = take(count);
    return std::string(reinterpret_cast<const char*>(b), static_cast<size_t>(count));
  }
  std::string line() {
    const size_t limit = std::min(n_ - pos_, kMaxGlobalName + 1);
    const void* nl = std::memchr(p_ + pos_, '\n', limit);
    if (!nl)
      fail(limit > kMaxGlobalName ? "GLOBAL name longer than 256 bytes"
                                  : "pickle is truncated inside a GLOBAL name");
    const size_t len = static_cast<size_t>(static_cast<const uint8_t*>(nl) - (p_ + pos_));
    std::string s = text(len);
    ++pos_;
    return s;
  }

  // --- values and stack ---
  ValuePtr make(Kind k) {
    if (++values_ > kMaxValues) fail("pickle creates more than ", kMaxValues, " objects");
    auto v = std::make_shared<Value>();
    v->kind = k;
    return v;
  }
  ValuePtr make_int(int64_t i) {
    ValuePtr v = make(Kind::kInt);
    v->i = i;
    return v;
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(ValuePtr v) {
    if (stack_.size() >= kMaxStack) fail("pickle stack exceeds ", kMaxStack, " entries");
    stack_.push_back(std::move(v));
  }
  ValuePtr pop() {
    if (stack_.size() <= floor()) fail("pickle stack underflow");
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  Value& top() {
    if (stack_.size() <= floor()) fail("pickle stack underflow");
    return *stack_.back();
  }
  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    std::vector<ValuePtr> items(std::make_move_iterator(stack_.begin() + marks_.back()),
                                std::make_move_iterator(stack_.end()));
    stack_.resize(marks_.back());
    marks_.pop_back();
    return items;
  }
  // Places child inside parent: the child is sealed and the parent's depth updated.
  void adopt(Value& parent, const ValuePtr& child) {
    if (child.get() == &parent) fail("a ", kind_name(parent.kind), " contains itself; recursive "
                                     "structures are not supported");
    child->sealed = true;
    parent.depth = std::max(parent.depth, child->depth + 1);
    if (parent.depth > kMaxDepth) fail("objects nest deeper than the limit of ", kMaxDepth);
    parent.items.push_back(child);
  }
  Value& mutable_top(Kind want) {
    Value& t = top();
    if (t.kind != want)
      fail("expected a ", kind_name(want), " on the stack, got a ", kind_name(t.kind));
    if (t.sealed)
      fail("modifies a ", kind_name(t.kind), " already placed inside another object; recursive "
           "structures are not supported");
    return t;
  }
  ValuePtr tuple_of(std::vector<ValuePtr> items) {
    ValuePtr t = make(Kind::kTuple);
    for (const auto& it : items) adopt(*t, it);
    return t;
  }

  // --- opcodes ---
  void op_global(const std::string& module, const std::string& name);
  void op_reduce();
  void op_build();
  void op_persid();
  ValuePtr rebuild_tensor(const std::vector<ValuePtr>& args);
  void memo_put(uint64_t index) {
    if (memo_.size() >= kMaxMemo && !memo_.count(index))
      fail("memo exceeds ", kMaxMemo, " entries");
    if (stack_.size() <= floor()) fail("memo put with nothing on the stack");
    memo_[index] = stack_.back();
  }
  void memo_get(uint64_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo index ", index, " was never stored");
    push(it->second);
  }
};

void Unpickler::op_global(const std::string& module, const std::string& name) {
  const std::string full = module + "." + name;
  ValuePtr g = make(Kind::kGlobal);
  g->s = full;
  if (full == "collections.OrderedDict") {
    g->callable = Callable::kOrderedDict;
  } else if (full == "torch._utils._rebuild_tensor_v2") {
    g->callable = Callable::kRebuildTensorV2;
  } else if (full == "torch._utils._rebuild_parameter") {
    g->callable = Callable::kRebuildParameter;
  } else {
    bool found = false;
    for (const auto& t : kStorageTypes) {
      if (module == "torch" && name == t.name) {
        g->callable = Callable::kStorageClass;
        g->storage_type = t.type;
        found = true;
      }
    }
    if (!found)
      fail("refused global \"", printable(full), "\": only ", allowed_globals(),
           " are allowed in a state dict; nothing was imported or executed");
  }
  push(std::move(g));
}

void Unpickler::op_persid() {
  const ValuePtr pid = pop();
  const auto& it = pid->items;
  if (pid->kind != Kind::kTuple || it.size() != 5 || it[0]->kind != Kind::kString ||
      it[0]->s != "storage")
    fail("persistent id must be ('storage', storage class, key, location, numel), got a ",
         kind_name(pid->kind), " of ", it.size(), " items");
  if (it[1]->kind != Kind::kGlobal || it[1]->callable != Callable::kStorageClass)
    fail("persistent id item 1 must be a torch.<X>Storage class, got ", kind_name(it[1]->kind),
         it[1]->kind == Kind::kGlobal ? " " + it[1]->s : std::string());
  if (it[2]->kind != Kind::kString || it[3]->kind != Kind::kString || it[4]->kind != Kind::kInt)
    fail("persistent id key and location must be str and numel an int, got ",
         kind_name(it[2]->kind), ", ", kind_name(it[3]->kind), ", ", kind_name(it[4]->kind));
  const std::string& key = it[2]->s;
  bool key_ok = !key.empty() && key.size() <= 64;
  for (const char c : key)
    key_ok = key_ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                        (c >= 'A' && c <= 'Z') || c == '_');
  if (!key_ok)
    fail("storage key \"", printable(key), "\" is not 1-64 characters of [A-Za-z0-9_]");
  auto ref = std::make_shared<StorageRef>();
  ref->key = key;
  ref->type = it[1]->storage_type;
  ref->numel = it[4]->i;
  uint64_t bytes = 0;
  if (ref->numel < 0 ||
      __builtin_mul_overflow(static_cast<uint64_t>(ref->numel),
                             static_cast<uint64_t>(storage_type_info(ref->type).size), &bytes))
    fail("storage \"", key, "\" numel ", ref->numel, " is negative or overflows its byte count");
  ValuePtr v = make(Kind::kStorage);
  v->storage = std::move(ref);
  push(std::move(v));
}

// Validates _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
// backward_hooks[, metadata]) and describes the tensor; no data is touched here.
ValuePtr Unpickler::rebuild_tensor(const std::vector<ValuePtr>& a) {
  if (a.size() != 6 && a.size() != 7)
    fail("_rebuild_tensor_v2 expects 6 or 7 arguments, got ", a.size());
  if (a[0]->kind != Kind::kStorage)
    fail("_rebuild_tensor_v2 argument 0 must be a storage, got ", kind_name(a[0]->kind));
  if (a[1]->kind != Kind::kInt || a[2]->kind != Kind::kTuple || a[3]->kind != Kind::kTuple)
    fail("_rebuild_tensor_v2 expects (storage, int offset, size tuple, stride tuple, ...), got (",
         "storage, ", kind_name(a[1]->kind), ", ", kind_name(a[2]->kind), ", ",
         kind_name(a[3]->kind), ", ...)");
  if (a[4]->kind != Kind::kBool)
    fail("_rebuild_tensor_v2 requires_grad must be a bool, got ", kind_name(a[4]->kind));
  if (a[5]->kind != Kind::kDict || !a[5]->items.empty())
    fail("_rebuild_tensor_v2 backward_hooks must be an empty dict, got ", kind_name(a[5]->kind),
         " of ", a[5]->items.size() / 2, " items");
  if (a.size() == 7 && a[6]->kind != Kind::kNone && a[6]->kind != Kind::kDict)
    fail("_rebuild_tensor_v2 metadata must be None or a dict, got ", kind_name(a[6]->kind));
  auto t = std::make_shared<TensorRef>();
  t->storage = *a[0]->storage;
  t->offset = a[1]->i;
  const auto& size = a[2]->items;
  const auto& stride = a[3]->items;
  if (size.size() != stride.size() || size.size() > kMaxRank)
    fail("tensor size has ", size.size(), " dims and stride ", stride.size(),
         ", expected equal ranks of at most ", kMaxRank);
  for (size_t d = 0; d < size.size(); ++d) {
    if (size[d]->kind != Kind::kInt || stride[d]->kind != Kind::kInt || size[d]->i < 0 ||
        stride[d]->i < 0)
      fail("tensor size and stride entries must be non-negative ints (dim ", d, ")");
    t->size.push_back(size[d]->i);
    t->stride.push_back(stride[d]->i);
  }
  // numel and the last addressed element, overflow-checked.
  int64_t numel = 1, last = t->offset;
  bool overflow = t->offset < 0;
  for (size_t d = 0; d < t->size.size() && !overflow; ++d) {
    overflow = __builtin_mul_overflow(numel, t->size[d], &numel);
    int64_t reach = 0;
    if (t->size[d] > 0)
      overflow = overflow || __builtin_mul_overflow(t->size[d] - 1, t->stride[d], &reach) ||
                 __builtin_add_overflow(last, reach, &last);
  }
  if (overflow)
    fail("tensor offset ", t->offset, ", size ", shape_str(t->size), " and stride ",
         shape_str(t->stride), " are negative or overflow 64 bits");
  const int64_t available = t->storage.numel;
  if (numel > 0 ? last >= available : t->offset > available)
    fail("tensor offset ", t->offset, ", size ", shape_str(t->size), " and stride ",
         shape_str(t->stride), " reach element ", last, " of storage \"", t->storage.key,
         "\", which holds ", available, " elements");
  // Zero or overlapping strides (expand()) address few elements many times; the contiguous copy
  // would be larger than the file, so it is capped.
  if (numel > available && numel > kMaxExpandedNumel)
    fail("tensor of size ", shape_str(t->size), " repeats elements of storage \"", t->storage.key,
         "\" (", available, " elements) through zero or overlapping strides ",
         shape_str(t->stride), "; its copy would exceed the limit of ", kMaxExpandedNumel,
         " elements");
  ValuePtr v = make(Kind::kTensor);
  v->tensor = std::move(t);
  return v;
}

void Unpickler::op_reduce() {
  const ValuePtr args = pop();
  const ValuePtr fn = pop();
  if (fn->kind != Kind::kGlobal)
    fail("REDUCE applies a ", kind_name(fn->kind), "; only allow-listed globals can be called");
  if (args->kind != Kind::kTuple)
    fail("REDUCE arguments must be a tuple, got ", kind_name(args->kind));
  fn->sealed = args->sealed = true;
  const auto& a = args->items;
  switch (fn->callable) {
    case Callable::kOrderedDict: {
      if (!a.empty()) fail("collections.OrderedDict expects no arguments, got ", a.size());
      ValuePtr d = make(Kind::kDict);
      d->ordered = true;
      push(std::move(d));
      return;
    }
    case Callable::kRebuildTensorV2:
      push(rebuild_tensor(a));
      return;
    case Callable::kRebuildParameter:
      if (a.size() != 3 || a[0]->kind != Kind::kTensor || a[1]->kind != Kind::kBool ||
          a[2]->kind != Kind::kDict || !a[2]->items.empty())
        fail("_rebuild_parameter expects (tensor, bool, empty dict), got ", a.size(),
             " arguments");
      push(a[0]);
      return;
    case Callable::kStorageClass:
      fail(fn->s, " cannot be called; storages come only from persistent ids");
  }
}

// BUILD on an OrderedDict sets instance attributes (state_dict()._metadata): accepted and ignored.
void Unpickler::op_build() {
  const ValuePtr state = pop();
  Value& obj = top();
  if (obj.kind != Kind::kDict || !obj.ordered)
    fail("BUILD is only supported on a collections.OrderedDict, got a ", kind_name(obj.kind));
  if (state->kind != Kind::kNone && state->kind != Kind::kDict)
    fail("OrderedDict state must be None or a dict, got ", kind_name(state->kind));
  state->sealed = true;
}

ValuePtr Unpickler::run() {
  while (pos_ < n_) {
    op_pos_ = pos_;
    op_ = p_[pos_++];
    switch (op_) {
      case 0x80: {  // PROTO
        const uint64_t v = uint_le(1);
        if (v < 2 || v > 5) fail("unsupported pickle protocol ", v, ", expected 2 to 5");
        break;
      }
      case 0x95: {  // FRAME: a length hint only
        const uint64_t len = uint_le(8);
        if (len > n_ - pos_) fail("frame of ", len, " bytes runs past the end of the pickle");
        break;
      }
      case '}': push(make(Kind::kDict)); break;
      case ']': push(make(Kind::kList)); break;
      case ')': push(make(Kind::kTuple)); break;
      case '(':
        if (marks_.size() >= kMaxMarks) fail("more than ", kMaxMarks, " nested MARKs");
        marks_.push_back(stack_.size());
        break;
      case 't': push(tuple_of(pop_mark())); break;
      case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
        std::vector<ValuePtr> items(op_ - 0x84);
        for (size_t k = items.size(); k-- > 0;) items[k] = pop();
        push(tuple_of(std::move(items)));
        break;
      }
      case 'J': push(make_int(static_cast<int32_t>(static_cast<uint32_t>(uint_le(4))))); break;
      case 'K': push(make_int(static_cast<int64_t>(uint_le(1)))); break;
      case 'M': push(make_int(static_cast<int64_t>(uint_le(2)))); break;
      case 0x8a: {  // LONG1: little-endian two's complement of n bytes
        const int len = static_cast<int>(uint_le(1));
        if (len > 8) fail("integer of ", len, " bytes does not fit in 64 bits");
        uint64_t u = len ? uint_le(len) : 0;
        if (len > 0 && len < 8 && (u >> (8 * len - 1)) & 1) u |= ~uint64_t{0} << (8 * len);
        push(make_int(static_cast<int64_t>(u)));
        break;
      }
      case 'X': case 0x8c: case 0x8d: {  // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
        const uint64_t len = uint_le(op_ == 'X' ? 4 : op_ == 0x8c ? 1 : 8);
        ValuePtr s = make(Kind::kString);
        s->s = text(len);
        push(std::move(s));
        break;
      }
      case 'G': {  // BINFLOAT, big-endian
        const uint8_t* b = take(8);
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | b[k];
        ValuePtr f = make(Kind::kFloat);
        std::memcpy(&f->f, &bits, 8);
        push(std::move(f));
        break;
      }
      case 0x88: case 0x89: {
        ValuePtr b = make(Kind::kBool);
        b->i = op_ == 0x88;
        push(std::move(b));
        break;
      }
      case 'N': push(make(Kind::kNone)); break;
      case 'q': memo_put(uint_le(1)); break;
      case 'r': memo_put(uint_le(4)); break;
      case 0x94: memo_put(memo_.size()); break;
      case 'h': memo_get(uint_le(1)); break;
      case 'j': memo_get(uint_le(4)); break;
      case 's': {
        ValuePtr v = pop(), k = pop();
        Value& d = mutable_top(Kind::kDict);
        adopt(d, k);
        adopt(d, v);
        break;
      }
      case 'u': {
        std::vector<ValuePtr> kv = pop_mark();
        if (kv.size() % 2) fail("SETITEMS needs key/value pairs, got ", kv.size(), " items");
        Value& d = mutable_top(Kind::kDict);
        for (const auto& x : kv) adopt(d, x);
        break;
      }
      case 'a': {
        ValuePtr v = pop();
        adopt(mutable_top(Kind::kList), v);
        break;
      }
      case 'e': {
        std::vector<ValuePtr> items = pop_mark();
        Value& l = mutable_top(Kind::kList);
        for (const auto& x : items) adopt(l, x);
        break;
      }
      case 'c': {
        const std::string module = line();
        const std::string name = line();
        op_global(module, name);
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        ValuePtr name = pop(), module = pop();
        if (name->kind != Kind::kString || module->kind != Kind::kString)
          fail("STACK_GLOBAL needs two strings, got ", kind_name(module->kind), " and ",
               kind_name(name->kind));
        if (module->s.size() > kMaxGlobalName || name->s.size() > kMaxGlobalName)
          fail("STACK_GLOBAL name longer than ", kMaxGlobalName, " bytes");
        op_global(module->s, name->s);
        break;
      }
      case 'R': op_reduce(); break;
      case 'b': op_build(); break;
      case 'Q': op_persid(); break;
      case '.': {
        ValuePtr result = pop();
        return result;
      }
      default:
        throw_error("[torch_pickle] ", where_, ": refused opcode ", opcode_str(op_), " at byte ",
                    op_pos_, ": not supported by the restricted state-dict unpickler; nothing "
                    "was executed");
    }
  }
  op_pos_ = pos_;
  throw_error("[torch_pickle] ", where_, ": pickle is truncated: it ends at byte ", n_,
              " without a STOP opcode");
}

}  // namespace

const StorageTypeInfo& storage_type_info(StorageType t) {
  for (const auto& info : kStorageTypes)
    if (info.type == t) return info;
  PERCEIVER_CHECK(false);
  return kStorageTypes[0];
}

std::vector<std::pair<std::string, TensorRef>> unpickle_state_dict(const std::string& bytes,
                                                                   const std::string& where) {
  const ValuePtr root = Unpickler(bytes, where).run();
  check(root->kind == Kind::kDict, "[torch_pickle] ", where,
        ": expected the pickle to hold a dict of name -> tensor (a state dict), got a ",
        kind_name(root->kind));
  std::vector<std::pair<std::string, TensorRef>> out;
  out.reserve(root->items.size() / 2);
  for (size_t k = 0; k + 1 < root->items.size(); k += 2) {
    const Value& key = *root->items[k];
    const Value& val = *root->items[k + 1];
    check(key.kind == Kind::kString, "[torch_pickle] ", where, ": state dict key ", k / 2,
          " is a ", kind_name(key.kind), ", expected str");
    check(val.kind == Kind::kTensor, "[torch_pickle] ", where, ": state dict entry \"",
          printable(key.s), "\" is a ", kind_name(val.kind), ", expected a tensor");
    out.emplace_back(key.s, *val.tensor);
  }
  return out;
}

}  // namespace perceiver::io::pickle
