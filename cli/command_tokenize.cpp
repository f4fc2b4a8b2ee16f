// embeval tokenize: a checkpoint's tokenizer over a JSONL file of texts, one
// {"input_ids": [...]} line per {"text": ...} line, special tokens included,
// after truncation; the ids sentence-transformers would feed the model.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "datasets/jsonl_reader.h"
#include "cli/cli_common.h"
#include "cli/commands.h"
#include "harness/error.h"
#include "runners/tokenizers/tokenizer.h"

namespace po = boost::program_options;

namespace embeval::cli {

int command_tokenize(int argc, char** argv) {
  std::string model, input, output, flavor_name;
  int64_t max_length = 0;
  po::options_description opts("embeval tokenize --model DIR --input texts.jsonl --output ids.jsonl [options]");
  opts.add_options()
      ("help,h", "show this help")
      ("model,m", po::value(&model)->required(), "checkpoint folder (tokenizer.json, vocab.txt or sentencepiece.bpe.model)")
      ("input,i", po::value(&input)->required(), "JSONL file, one {\"text\": ...} per line")
      ("output,o", po::value(&output)->required(), "JSONL file written, one {\"input_ids\": [...]} per line")
      ("max-length", po::value(&max_length)->default_value(0),
       "truncate to this many ids, specials included (0: the model's max_seq_length, as sentence-transformers)")
      ("flavor", po::value(&flavor_name)->default_value("auto"),
       "WordPiece rules where transformers' two tokenizers differ on rare characters: slow (BertTokenizer), "
       "fast (BertTokenizerFast), auto (fast for tokenizer.json, slow for vocab.txt)")
      ("quiet,q", "no summary line");
  po::variables_map vm;
  if (!parse_options(argc, argv, opts, vm)) return 0;
  if (max_length < 0 || max_length == 1) throw po::error("--max-length must be 0 (the model's) or at least 2");
  TokenizerFlavor flavor = TOKENIZER_AUTO;
  if (flavor_name == "slow")
    flavor = TOKENIZER_SLOW;
  else if (flavor_name == "fast")
    flavor = TOKENIZER_FAST;
  else if (flavor_name != "auto")
    throw po::error("--flavor must be auto, slow or fast, not \"" + flavor_name + "\"");

  std::unique_ptr<Tokenizer> tokenizer = load_tokenizer(model, flavor);
  if (max_length == 0) max_length = default_max_length(model);
  data::JsonlReader reader(input);

  // Written beside the output and renamed at the end, so a failure never
  // leaves a partial ids.jsonl behind.
  const std::filesystem::path out_path(output), part_path(output + ".part");
  std::ofstream out(part_path, std::ios::binary);
  if (!out) fail("{}: cannot write", output);
  int64_t texts = 0, ids_total = 0, truncated = 0;
  nlohmann::json row;
  std::string line;
  try {
    while (reader.next(row)) {
      std::string text = reader.get_string(row, "text");
      std::vector<int32_t> ids = tokenizer->encode(text, max_length);
      if (static_cast<int64_t>(ids.size()) == max_length && tokenizer->encode(text, max_length + 1).size() > ids.size())
        ++truncated;
      line.assign("{\"input_ids\": [");
      for (size_t k = 0; k < ids.size(); ++k) fmt::format_to(std::back_inserter(line), "{}{}", k ? ", " : "", ids[k]);
      line.append("]}\n");
      out << line;
      ++texts;
      ids_total += static_cast<int64_t>(ids.size());
    }
    out.close();
    if (!out) fail("{}: write failed", output);
    std::filesystem::rename(part_path, out_path);
  } catch (...) {
    out.close();
    std::error_code ec;
    std::filesystem::remove(part_path, ec);
    throw;
  }
  if (!vm.count("quiet"))
    std::fprintf(stderr, "tokenized %lld texts into %lld ids (%lld truncated at %lld) with %s -> %s\n",
                 static_cast<long long>(texts), static_cast<long long>(ids_total), static_cast<long long>(truncated),
                 static_cast<long long>(max_length), tokenizer->describe().c_str(), output.c_str());
  return 0;
}

}  // namespace embeval::cli
