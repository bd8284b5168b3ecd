// stock.h - the stock programs (fusion/stock/*.fccl: SGD, Adam, AdamW, LAMB, loss scaling,
// global-norm clipping, bias+dropout+residual, mixed precision) by name. They are part of the
// product: installed as share/fccl/programs/NAME.fccl, and compiled into the library (the text
// is embedded at configure time), so a lookup never reads a file.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fccl::fusion::stock {

// The text of stock program `name` ("adam"), or nullptr when there is none by that name.
const char* find(std::string_view name);
// Every stock program's name, sorted.
std::vector<std::string> names();

}  // namespace fccl::fusion::stock
