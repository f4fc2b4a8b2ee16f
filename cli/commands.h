#pragma once
// One function per subcommand; each takes argv starting at the command name
// and returns the process exit status. Errors are thrown as exceptions.
namespace embeval::cli {

int command_run(int argc, char** argv);
int command_tasks(int argc, char** argv);
int command_report(int argc, char** argv);
int command_tokenize(int argc, char** argv);
int command_embed(int argc, char** argv);
int command_models(int argc, char** argv);
int command_quantize(int argc, char** argv);
int command_train(int argc, char** argv);

}  // namespace embeval::cli
