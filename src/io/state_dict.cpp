// Format sniffing and dispatch for state dict files (safetensors or torch.save zip).
#include "perceiver/io/state_dict.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "perceiver/core/error.h"
#include "perceiver/io/safetensors.h"
#include "perceiver/io/torch_pickle.h"

namespace perceiver::io {

const char* state_dict_format_name(StateDictFormat f) {
  return f == StateDictFormat::kSafetensors ? "safetensors" : "torch zip";
}

StateDictFormat detect_state_dict_format(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw_error("[state_dict] ", path, ": cannot open: ", std::strerror(errno));
  unsigned char head[9] = {};
  const size_t n = std::fread(head, 1, sizeof head, f);
  std::fclose(f);
  if (n >= 4 && head[0] == 'P' && head[1] == 'K' &&
      ((head[2] == 3 && head[3] == 4) || (head[2] == 5 && head[3] == 6)))
    return StateDictFormat::kTorchZip;
  if (n == 9 && head[8] == '{') return StateDictFormat::kSafetensors;
  if (n >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5)
    throw_error("[state_dict] ", path, ": legacy (pre-1.6, non-zip) torch.save format is not "
                "supported, expected safetensors or a torch.save zip archive");
  char shown[40] = {};
  for (size_t i = 0; i < n && i < 8; ++i)
    std::snprintf(shown + 3 * i, sizeof shown - 3 * i, "%02x ", head[i]);
  throw_error("[state_dict] ", path, ": unrecognised file format, expected safetensors "
              "(8-byte header length then '{') or a torch.save zip archive (\"PK\\3\\4\"), got "
              "leading bytes ", n ? shown : "(empty file)");
}

StateDict load_state_dict_file(const std::string& path) {
  StateDict out;
  out.format = detect_state_dict_format(path);
  SafetensorsFile f = out.format == StateDictFormat::kSafetensors ? load_safetensors(path)
                                                                  : load_pytorch_bin(path);
  out.tensors = std::move(f.tensors);
  out.order = std::move(f.order);
  out.metadata = std::move(f.metadata);
  return out;
}

}  // namespace perceiver::io
