// rotary: rotary position embeddings (RoPE) for every published variant, numerically faithful to
// Hugging Face transformers. This umbrella header includes the whole public API.
#pragma once

#include "rotary/angles.h"
#include "rotary/attention.h"
#include "rotary/config.h"
#include "rotary/config_json.h"
#include "rotary/decay.h"
#include "rotary/error.h"
#include "rotary/float16.h"
#include "rotary/frequencies.h"
#include "rotary/gguf.h"
#include "rotary/json.h"
#include "rotary/kv_cache.h"
#include "rotary/layers.h"
#include "rotary/limits.h"
#include "rotary/multimodal.h"
#include "rotary/packing.h"
#include "rotary/positions.h"
#include "rotary/qk_norm.h"
#include "rotary/rope.h"
#include "rotary/simd.h"
#include "rotary/tensor.h"
