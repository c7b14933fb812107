// read_gguf (rotary/gguf.h): the fixtures of tests/data/gguf read back with the values
// make_fixtures.py wrote (written out here, or read from the config it took them from), then
// hostile files made from a fixture's bytes, each of which must be refused with a rotary::Error.
#include "rotary/gguf.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <numbers>
#include <string>
#include <vector>

#include "rotary/error.h"
#include "test_errors.h"

namespace rotary {
namespace {

using Bytes = std::vector<unsigned char>;
using rotary::testing::thrown_by;

std::string fixture(const std::string& name) {
  return std::string(ROTARY_TEST_DATA_DIR) + "/gguf/" + name;
}

Bytes bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

// A file in the test's temporary directory holding `bytes`.
std::string written(const Bytes& bytes, const std::string& name = "hostile.gguf") {
  const auto path =
      std::filesystem::path(::testing::TempDir()) / (std::to_string(getpid()) + "-" + name);
  // A new file each time: rewriting one in place makes ext4 flush it to disk (auto_da_alloc),
  // which would make the thousands of files below take seconds.
  std::filesystem::remove(path);
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  return path.string();
}

// The offset just past the first occurrence of `text` in `bytes` (a key or a tensor name).
std::size_t after(const Bytes& bytes, const std::string& text) {
  const auto found = std::search(bytes.begin(), bytes.end(), text.begin(), text.end());
  EXPECT_NE(found, bytes.end()) << text;
  return static_cast<std::size_t>(found - bytes.begin()) + text.size();
}

void put_u32(Bytes& bytes, std::size_t at, uint32_t value) {
  for (int b = 0; b < 4; ++b) bytes.at(at + b) = static_cast<unsigned char>(value >> (8 * b));
}
void put_u64(Bytes& bytes, std::size_t at, uint64_t value) {
  for (int b = 0; b < 8; ++b) bytes.at(at + b) = static_cast<unsigned char>(value >> (8 * b));
}

// The parse error reading `bytes` gives; fails the test unless it is one and mentions `words`.
Error refusal(const Bytes& bytes, const std::string& words) {
  const std::string path = written(bytes);
  Error error = thrown_by([&] { read_gguf(path); });
  EXPECT_EQ(error.code(), ErrorCode::kParseError) << error.what();
  EXPECT_EQ(error.argument(), path);
  EXPECT_NE(error.message().find(words), std::string::npos)
      << "expected '" << words << "' in: " << error.what();
  EXPECT_EQ(error.message().rfind("byte ", 0), 0u) << "no byte offset in: " << error.what();
  return error;
}

int64_t integer(const GgufMetadata& m, const std::string& key) {
  return std::get<int64_t>(m.keys.at(key));
}
double real(const GgufMetadata& m, const std::string& key) {
  return std::get<double>(m.keys.at(key));
}
std::string text(const GgufMetadata& m, const std::string& key) {
  return std::get<std::string>(m.keys.at(key));
}

// --- the fixtures -------------------------------------------------------------------------------

// The llama3 divisors of the pair frequencies (the rule of transformers' llama3 rope type and of
// llama.cpp's converter), computed in double.
std::vector<double> llama3_divisors(int head_dim, double base, double factor, double low,
                                    double high, double old_context) {
  std::vector<double> divisors;
  for (int i = 0; i < head_dim; i += 2) {
    const double wavelength = 2 * std::numbers::pi * std::pow(base, double(i) / head_dim);
    if (wavelength < old_context / high) {
      divisors.push_back(1.0);
    } else if (wavelength > old_context / low) {
      divisors.push_back(factor);
    } else {
      const double smooth = (old_context / wavelength - low) / (high - low);
      divisors.push_back(1 / ((1 - smooth) / factor + smooth));
    }
  }
  return divisors;
}

TEST(GgufRead, Llama31HasItsKeysAndTheLlama3FactorTensor) {
  const GgufMetadata m = read_gguf(fixture("llama-3.1-8b.gguf"));
  EXPECT_EQ(m.architecture, "llama");
  EXPECT_EQ(text(m, "general.architecture"), "llama");
  EXPECT_EQ(integer(m, "llama.block_count"), 32);
  EXPECT_EQ(integer(m, "llama.context_length"), 131072);
  EXPECT_EQ(integer(m, "llama.embedding_length"), 4096);
  EXPECT_EQ(integer(m, "llama.attention.head_count"), 32);
  EXPECT_EQ(integer(m, "llama.attention.head_count_kv"), 8);
  EXPECT_EQ(integer(m, "llama.attention.key_length"), 128);
  EXPECT_EQ(integer(m, "llama.rope.dimension_count"), 128);
  EXPECT_EQ(real(m, "llama.rope.freq_base"), 500000.0);
  EXPECT_EQ(m.keys.size(), 9u);          // the above: no rope.scaling keys for llama3
  ASSERT_EQ(m.rope_tensors.size(), 1u);  // token_embd is not a RoPE tensor
  const std::vector<float>& freqs = m.rope_tensors.at("rope_freqs");
  const std::vector<double> expected = llama3_divisors(128, 500000.0, 8.0, 1.0, 4.0, 8192.0);
  ASSERT_EQ(freqs.size(), expected.size());
  for (std::size_t i = 0; i < freqs.size(); ++i) {
    EXPECT_NEAR(freqs[i], expected[i], 1e-5 * expected[i]) << "pair " << i;
  }
  EXPECT_EQ(freqs.front(), 1.0f);
  EXPECT_EQ(freqs.back(), 8.0f);
}

TEST(GgufRead, Qwen2YarnHasTheScalingKeysAndNoTensor) {
  const GgufMetadata m = read_gguf(fixture("qwen2-yarn.gguf"));
  EXPECT_EQ(m.architecture, "qwen2");
  EXPECT_EQ(integer(m, "qwen2.block_count"), 28);
  EXPECT_EQ(integer(m, "qwen2.context_length"), 32768);
  EXPECT_EQ(integer(m, "qwen2.embedding_length"), 3584);
  EXPECT_EQ(integer(m, "qwen2.attention.head_count"), 28);
  EXPECT_EQ(integer(m, "qwen2.attention.head_count_kv"), 4);
  EXPECT_EQ(real(m, "qwen2.rope.freq_base"), 1000000.0);
  EXPECT_EQ(text(m, "qwen2.rope.scaling.type"), "yarn");
  EXPECT_EQ(real(m, "qwen2.rope.scaling.factor"), 4.0);
  EXPECT_EQ(integer(m, "qwen2.rope.scaling.original_context_length"), 32768);
  EXPECT_EQ(real(m, "qwen2.rope.scaling.attn_factor"), 1.0);
  EXPECT_EQ(m.keys.size(), 11u);
  EXPECT_FALSE(m.keys.count("qwen2.rope.dimension_count"));
  EXPECT_TRUE(m.rope_tensors.empty());
}

TEST(GgufRead, Phi3LongropeHasBothFactorTensorsAtAlignment64) {
  const GgufMetadata m = read_gguf(fixture("phi3-longrope.gguf"));
  EXPECT_EQ(m.architecture, "phi3");
  EXPECT_EQ(integer(m, "general.alignment"), 64);
  EXPECT_EQ(integer(m, "phi3.context_length"), 131072);
  EXPECT_EQ(integer(m, "phi3.embedding_length"), 3072);
  EXPECT_EQ(integer(m, "phi3.attention.head_count"), 32);
  EXPECT_EQ(integer(m, "phi3.attention.head_count_kv"), 32);
  EXPECT_EQ(integer(m, "phi3.rope.dimension_count"), 96);
  EXPECT_EQ(real(m, "phi3.rope.freq_base"), 10000.0);
  EXPECT_EQ(integer(m, "phi3.rope.scaling.original_context_length"), 4096);
  // Phi-3's converter: sqrt(1 + ln(131072 / 4096) / ln(4096)), stored as float32.
  const double attn_factor = std::sqrt(1 + std::log(32.0) / std::log(4096.0));
  EXPECT_EQ(real(m, "phi3.rope.scaling.attn_factor"), double(float(attn_factor)));
  EXPECT_FALSE(m.keys.count("phi3.rope.scaling.type"));
  EXPECT_EQ(m.keys.size(), 10u);

  std::ifstream config_file(std::string(ROTARY_TEST_DATA_DIR) +
                            "/configs/phi-3.5-mini-instruct.json");
  const nlohmann::json scaling = nlohmann::json::parse(config_file).at("rope_scaling");
  ASSERT_EQ(m.rope_tensors.size(), 2u);
  for (const char* kind : {"long", "short"}) {
    const std::vector<double> expected = scaling.at(std::string(kind) + "_factor");
    const std::vector<float>& factors = m.rope_tensors.at(std::string("rope_factors_") + kind);
    ASSERT_EQ(factors.size(), 48u) << kind;
    for (std::size_t i = 0; i < factors.size(); ++i) {
      EXPECT_EQ(factors[i], float(expected[i])) << kind << " pair " << i;
    }
  }
}

TEST(GgufRead, Qwen2VlHasItsSectionsAsAnIntegerArray) {
  const GgufMetadata m = read_gguf(fixture("qwen2vl.gguf"));
  EXPECT_EQ(m.architecture, "qwen2vl");
  EXPECT_EQ(integer(m, "qwen2vl.context_length"), 128000);
  EXPECT_EQ(integer(m, "qwen2vl.embedding_length"), 3584);
  EXPECT_EQ(integer(m, "qwen2vl.attention.head_count"), 28);
  EXPECT_EQ(integer(m, "qwen2vl.attention.head_count_kv"), 4);
  EXPECT_EQ(real(m, "qwen2vl.rope.freq_base"), 1000000.0);
  EXPECT_EQ(std::get<std::vector<int64_t>>(m.keys.at("qwen2vl.rope.dimension_sections")),
            (std::vector<int64_t>{16, 24, 24, 0}));
  EXPECT_EQ(m.keys.size(), 7u);
  EXPECT_TRUE(m.rope_tensors.empty());
}

TEST(GgufRead, EveryValueTypeConvertsAndStringArraysAreReadPast) {
  const GgufMetadata m = read_gguf(fixture("vocab-and-types.gguf"));
  EXPECT_EQ(m.architecture, "llama");
  EXPECT_EQ(integer(m, "llama.context_length"), 4096);
  EXPECT_EQ(integer(m, "test.uint8"), 255);
  EXPECT_EQ(integer(m, "test.int8"), -128);
  EXPECT_EQ(integer(m, "test.uint16"), 65535);
  EXPECT_EQ(integer(m, "test.int16"), -32768);
  EXPECT_EQ(integer(m, "test.uint32"), 4294967295);
  EXPECT_EQ(integer(m, "test.int32"), -2147483648);
  EXPECT_EQ(real(m, "test.float32"), double(0.1f));
  EXPECT_EQ(std::get<bool>(m.keys.at("test.bool_true")), true);
  EXPECT_EQ(std::get<bool>(m.keys.at("test.bool_false")), false);
  EXPECT_EQ(text(m, "test.string"), "h\xc3\xa9llo");
  EXPECT_EQ(integer(m, "test.uint64"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(integer(m, "test.int64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(real(m, "test.float64"), 0.1);
  using Ints = std::vector<int64_t>;
  using Reals = std::vector<double>;
  EXPECT_EQ(std::get<Ints>(m.keys.at("test.int32_array")), (Ints{1, -2, 3}));
  EXPECT_EQ(std::get<Reals>(m.keys.at("test.float32_array")), (Reals{0.5, -1.5}));
  EXPECT_EQ(std::get<Ints>(m.keys.at("test.bool_array")), (Ints{1, 0, 1}));
  EXPECT_EQ(std::get<Ints>(m.keys.at("test.uint8_array")), (Ints{0, 7, 255}));
  EXPECT_EQ(std::get<Reals>(m.keys.at("test.float64_array")), (Reals{0.1, 2.0}));
  Ints token_types(1000);
  for (int i = 0; i < 1000; ++i) token_types[i] = i % 6;
  EXPECT_EQ(std::get<Ints>(m.keys.at("tokenizer.ggml.token_type")), token_types);
  // Read past, not kept.
  EXPECT_FALSE(m.keys.count("test.nested_array"));
  EXPECT_FALSE(m.keys.count("test.string_array"));
  EXPECT_FALSE(m.keys.count("tokenizer.ggml.tokens"));
  EXPECT_EQ(m.keys.size(), 21u);
  EXPECT_TRUE(m.rope_tensors.empty());
}

TEST(GgufRead, RefusesARopeTensorThatIsNotFloat32) {
  const Error e = refusal(bytes_of(fixture("llama-f16-rope-freqs.gguf")), "ggml type 1");
  EXPECT_NE(e.message().find("rope_freqs.weight"), std::string::npos) << e.what();
  EXPECT_NE(e.message().find("F32"), std::string::npos) << e.what();
}

TEST(GgufRead, ReadsVersion2AsVersion3) {
  Bytes bytes = bytes_of(fixture("llama-3.1-8b.gguf"));
  put_u32(bytes, 4, 2);
  const GgufMetadata m = read_gguf(written(bytes));
  EXPECT_EQ(m.architecture, "llama");
  EXPECT_EQ(m.rope_tensors.at("rope_freqs").size(), 64u);
}

TEST(GgufRead, AMissingFileOrADirectoryIsAnIoErrorNamingThePath) {
  const std::string missing = fixture("no-such-file.gguf");
  Error e = thrown_by([&] { read_gguf(missing); });
  EXPECT_EQ(e.code(), ErrorCode::kIoError);
  EXPECT_EQ(e.argument(), missing);
  const std::string directory = std::string(ROTARY_TEST_DATA_DIR) + "/gguf";
  e = thrown_by([&] { read_gguf(directory); });
  EXPECT_EQ(e.code(), ErrorCode::kIoError);
  EXPECT_EQ(e.argument(), directory);
}

// --- hostile files ------------------------------------------------------------------------------

// Reads `bytes`, which must either succeed or throw rotary::Error: never another exception.
bool reads_or_refuses(const Bytes& bytes, const std::string& name) {
  const std::string path = written(bytes, name);
  try {
    read_gguf(path);
    return true;
  } catch (const Error&) {
    return false;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a rotary::Error: " << e.what();
    return false;
  }
}

// Each fixture ends with its last RoPE tensor's data, so every prefix lacks something it needs.
TEST(GgufHostile, EveryTruncationIsRefused) {
  for (const char* name : {"llama-3.1-8b.gguf", "phi3-longrope.gguf"}) {
    const Bytes bytes = bytes_of(fixture(name));
    for (std::size_t length = 0; length < bytes.size(); ++length) {
      const Bytes prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(length));
      EXPECT_FALSE(reads_or_refuses(prefix, "truncated.gguf")) << name << " cut at " << length;
    }
  }
}

TEST(GgufHostile, EveryByteSetTo0xFFReadsOrIsRefusedWithoutCrashing) {
  const Bytes bytes = bytes_of(fixture("phi3-longrope.gguf"));
  for (std::size_t at = 0; at < bytes.size(); ++at) {
    Bytes changed = bytes;
    changed[at] = 0xFF;
    reads_or_refuses(changed, "flipped.gguf");
  }
}

TEST(GgufHostile, WrongMagicAndUnknownVersions) {
  Bytes bytes = bytes_of(fixture("llama-3.1-8b.gguf"));
  Bytes magic = bytes;
  magic[3] = 'X';
  refusal(magic, "expected the magic bytes 'GGUF'");
  Bytes version = bytes;
  put_u32(version, 4, 1);
  refusal(version, "GGUF version 1 is not supported");
  put_u32(version, 4, 99);
  refusal(version, "GGUF version 99 is not known");
  put_u32(version, 4, 0x03000000);
  refusal(version, "big-endian");
}

TEST(GgufHostile, CountsThatCannotFitAreRefusedBeforeAllocating) {
  const Bytes bytes = bytes_of(fixture("llama-3.1-8b.gguf"));
  Bytes tensors = bytes;
  put_u64(tensors, 8, 10'000'000'000ull);
  refusal(tensors, "tensor count: 10000000000 of at least 24 bytes each cannot fit");
  Bytes kvs = bytes;
  put_u64(kvs, 16, uint64_t{1} << 63);
  refusal(kvs, "key/value count: 9223372036854775808 of at least 14 bytes");
  Bytes both = bytes;  // each fits alone, not together
  put_u64(both, 8, (bytes.size() - 24) / 24);
  put_u64(both, 16, (bytes.size() - 24) / 14);
  refusal(both, "cannot both fit");
}

TEST(GgufHostile, AStringLongerThanTheFileIsRefused) {
  Bytes bytes = bytes_of(fixture("llama-3.1-8b.gguf"));
  put_u64(bytes, 24, uint64_t{1} << 62);  // the first key's length
  refusal(bytes, "the length of key 0 is 4611686018427387904 bytes");
}

TEST(GgufHostile, AnArrayCountPastTheFileIsRefused) {
  Bytes bytes = bytes_of(fixture("qwen2vl.gguf"));
  const std::size_t value = after(bytes, "qwen2vl.rope.dimension_sections");
  put_u64(bytes, value + 8, uint64_t{1} << 40);  // after the array and element types
  refusal(bytes, "1099511627776 of at least 4 bytes each cannot fit");
  Bytes strings = bytes_of(fixture("vocab-and-types.gguf"));
  put_u64(strings, after(strings, "tokenizer.ggml.tokens") + 8, uint64_t{1} << 40);
  refusal(strings, "(strings): 1099511627776 of at least 8 bytes");
}

TEST(GgufHostile, AnUnknownValueTypeIsRefused) {
  Bytes bytes = bytes_of(fixture("llama-3.1-8b.gguf"));
  put_u32(bytes, after(bytes, "llama.context_length"), 13);
  refusal(bytes, "has value type 13, expected a GGUF value type 0 to 12");
  Bytes element = bytes_of(fixture("qwen2vl.gguf"));
  put_u32(element, after(element, "qwen2vl.rope.dimension_sections") + 4, 13);
  refusal(element, "value type 13");
}

TEST(GgufHostile, ABoolByteOtherThanZeroOrOneIsRefused) {
  Bytes bytes = bytes_of(fixture("vocab-and-types.gguf"));
  bytes.at(after(bytes, "test.bool_true") + 4) = 2;
  refusal(bytes, "is a bool stored as 2, expected 0 or 1");
  Bytes array = bytes_of(fixture("vocab-and-types.gguf"));
  array.at(after(array, "test.bool_array") + 4 + 4 + 8 + 1) = 7;
  refusal(array, "element 1 of array 'test.bool_array' is a bool stored as 7");
}

TEST(GgufHostile, AUint64AboveInt64MaxIsRefused) {
  Bytes bytes = bytes_of(fixture("vocab-and-types.gguf"));
  put_u64(bytes, after(bytes, "test.uint64") + 4, ~uint64_t{0});
  refusal(bytes, "is the uint64 18446744073709551615, expected at most");
}

TEST(GgufHostile, ADuplicateKeyIsRefused) {
  Bytes bytes = bytes_of(fixture("vocab-and-types.gguf"));
  const std::string same_length = "test.uint8";  // as long as "test.int16"
  const std::size_t key = after(bytes, "test.int16") - same_length.size();
  std::memcpy(&bytes[key], same_length.data(), same_length.size());
  refusal(bytes, "key 'test.uint8' appears twice");
}

TEST(GgufHostile, ArraysNestedTwoDeepAreRefused) {
  Bytes bytes = bytes_of(fixture("vocab-and-types.gguf"));
  // The array type, its element type (array), its count, then the first element's type.
  put_u32(bytes, after(bytes, "test.nested_array") + 4 + 4 + 8, 9);
  refusal(bytes, "nests arrays two levels deep");
}

TEST(GgufHostile, ARopeTensorWhoseDataLiesPastTheEndIsRefused) {
  Bytes bytes = bytes_of(fixture("llama-3.1-8b.gguf"));
  // After the name: n_dims (4 bytes), one dimension (8), the ggml type (4), the offset (8).
  const std::size_t offset = after(bytes, "rope_freqs.weight") + 4 + 8 + 4;
  put_u64(bytes, offset, uint64_t{1} << 20);
  refusal(bytes, "lie past the end of the file");
  put_u64(bytes, offset, ~uint64_t{0} - 31);  // offset + size overflows
  refusal(bytes, "lie past the end of the file");
  put_u64(bytes, offset, 4);
  refusal(bytes, "expected a multiple of the alignment 32");
}

TEST(GgufHostile, ARopeTensorWithMoreElementsThanItsDataIsRefused) {
  Bytes bytes = bytes_of(fixture("llama-3.1-8b.gguf"));
  put_u64(bytes, after(bytes, "rope_freqs.weight") + 4, 65);  // 64 floats are stored
  refusal(bytes, "lie past the end of the file");
}

TEST(GgufHostile, ARopeTensorThatIsNotAVectorIsRefused) {
  Bytes bytes = bytes_of(fixture("llama-3.1-8b.gguf"));
  const std::size_t dims = after(bytes, "rope_freqs.weight");
  // Two dimensions 32 x 2 in place of one of 64: the same bytes, in the slot of n_dims, the
  // dimension and the type; the rest shifts, so build the tensor info anew.
  Bytes info;
  auto push_u32 = [&](uint32_t v) {
    for (int b = 0; b < 4; ++b) info.push_back(static_cast<unsigned char>(v >> (8 * b)));
  };
  auto push_u64 = [&](uint64_t v) {
    for (int b = 0; b < 8; ++b) info.push_back(static_cast<unsigned char>(v >> (8 * b)));
  };
  push_u32(2);
  push_u64(32);
  push_u64(2);
  Bytes changed(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(dims));
  changed.insert(changed.end(), info.begin(), info.end());
  changed.insert(changed.end(), bytes.begin() + static_cast<std::ptrdiff_t>(dims + 4 + 8),
                 bytes.end());
  refusal(changed, "is not a vector");
}

TEST(GgufHostile, AlignmentMustBeAPowerOfTwo) {
  Bytes bytes = bytes_of(fixture("phi3-longrope.gguf"));
  const std::size_t value = after(bytes, "general.alignment") + 4;
  for (uint32_t alignment : {0u, 3u, 48u}) {
    put_u32(bytes, value, alignment);
    refusal(bytes,
            "'general.alignment' is " + std::to_string(alignment) + ", expected a power of two");
  }
  put_u32(bytes, value - 4, 5);  // int32, not uint32
  refusal(bytes, "'general.alignment' has type int32, expected uint32");
}

TEST(GgufHostile, TooManyDimensionsOrElementsAreRefused) {
  Bytes bytes = bytes_of(fixture("llama-3.1-8b.gguf"));
  Bytes five = bytes;
  put_u32(five, after(five, "rope_freqs.weight"), 5);
  refusal(five, "has 5 dimensions, expected at most 4");
  Bytes huge = bytes;  // token_embd is 8 x 4
  const std::size_t dims = after(huge, "token_embd.weight") + 4;
  put_u64(huge, dims, uint64_t{1} << 62);
  put_u64(huge, dims + 8, 4);
  refusal(huge, "has more elements than an int64 can count");
  put_u64(huge, dims, ~uint64_t{0});
  refusal(huge, "expected at most 9223372036854775807");
}

TEST(GgufHostile, APerLayerRopeTensorIsRefusedByName) {
  Bytes bytes = bytes_of(fixture("phi3-longrope.gguf"));
  const std::string per_layer = "blk.10.rope_freqs.weight";  // as long as the long factors' name
  const std::size_t name = after(bytes, "rope_factors_long.weight") - per_layer.size();
  std::memcpy(&bytes[name], per_layer.data(), per_layer.size());
  refusal(bytes, "tensor 'blk.10.rope_freqs.weight' is a per-layer rope_freqs");
}

TEST(GgufHostile, ANonFiniteRopeFactorIsRefused) {
  Bytes bytes = bytes_of(fixture("llama-3.1-8b.gguf"));
  const uint32_t nan_bits = 0x7FC00000u;
  put_u32(bytes, bytes.size() - 4, nan_bits);  // the last factor
  refusal(bytes, "rope_freqs.weight'[63] is nan, expected a finite number");
}

TEST(GgufHostile, AFileWithoutAnArchitectureIsRefused) {
  Bytes bytes = bytes_of(fixture("qwen2vl.gguf"));
  const std::string other = "general.architecturX";
  std::memcpy(&bytes[after(bytes, "general.architecture") - other.size()], other.data(),
              other.size());
  refusal(bytes, "no key 'general.architecture'");
}

// --- files built here ---------------------------------------------------------------------------

// A GGUF v3 file's bytes, key by key.
class GgufBuilder {
 public:
  GgufBuilder& u32(uint32_t v) { return put(v, 4); }
  GgufBuilder& u64(uint64_t v) { return put(v, 8); }
  GgufBuilder& str(const std::string& s) {
    u64(s.size());
    bytes_.insert(bytes_.end(), s.begin(), s.end());
    return *this;
  }
  GgufBuilder& header(uint64_t tensors, uint64_t kvs) {
    bytes_ = {'G', 'G', 'U', 'F'};
    return u32(3).u64(tensors).u64(kvs).str("general.architecture").u32(8).str("llama");
  }
  Bytes bytes() const { return bytes_; }

 private:
  GgufBuilder& put(uint64_t v, int n) {
    for (int b = 0; b < n; ++b) bytes_.push_back(static_cast<unsigned char>(v >> (8 * b)));
    return *this;
  }
  Bytes bytes_;
};

TEST(GgufRead, NumericArraysOverAMillionElementsAreReadPast) {
  constexpr uint64_t kKept = uint64_t{1} << 20;
  GgufBuilder file;
  file.header(0, 4).str("kept").u32(9).u32(0).u64(kKept);
  Bytes bytes = file.bytes();
  bytes.resize(bytes.size() + kKept, 3);
  GgufBuilder rest;
  rest.str("skipped").u32(9).u32(0).u64(kKept + 1);
  Bytes tail = rest.bytes();
  tail.resize(tail.size() + kKept + 1, 5);
  GgufBuilder last;
  last.str("after").u32(4).u32(17);
  bytes.insert(bytes.end(), tail.begin(), tail.end());
  const Bytes after_bytes = last.bytes();
  bytes.insert(bytes.end(), after_bytes.begin(), after_bytes.end());
  const GgufMetadata m = read_gguf(written(bytes, "big.gguf"));
  EXPECT_EQ(std::get<std::vector<int64_t>>(m.keys.at("kept")).size(), kKept);
  EXPECT_EQ(std::get<std::vector<int64_t>>(m.keys.at("kept")).back(), 3);
  EXPECT_FALSE(m.keys.count("skipped"));
  EXPECT_EQ(integer(m, "after"), 17);
}

TEST(GgufRead, AnEmptyKeyIsRefused) {
  GgufBuilder file;
  file.header(0, 2).str("").u32(4).u32(1);
  refusal(file.bytes(), "key 1 is empty");
}

TEST(GgufRead, TensorNamesFollowLlamaCppsLimits) {
  auto with_tensors = [](const std::vector<std::string>& names) {
    GgufBuilder file;
    file.header(names.size(), 1);
    for (const std::string& name : names) file.str(name).u32(1).u64(4).u32(0).u64(0);
    return file.bytes();
  };
  refusal(with_tensors({std::string(64, 'a')}), "is 64 bytes long; expected at most 63");
  refusal(with_tensors({"output.weight", "output.weight"}), "tensor 'output.weight' appears twice");
  // Unrelated tensors need not lie inside the file: only the RoPE tensors' data is read.
  Bytes bytes = with_tensors({std::string(63, 'a')});
  bytes.resize((bytes.size() + 31) / 32 * 32);  // the data section starts inside the file
  const GgufMetadata m = read_gguf(written(bytes));
  EXPECT_TRUE(m.rope_tensors.empty());
}

TEST(GgufRead, AKeyLongerThan65535BytesIsRefused) {
  GgufBuilder file;
  file.header(0, 2).str(std::string(65536, 'k')).u32(4).u32(1);
  refusal(file.bytes(), "key 1 is 65536 bytes long; expected at most 65535");
}

}  // namespace
}  // namespace rotary
