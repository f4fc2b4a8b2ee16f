# Sourced by the portability checks: apt-get with its own sources list and
# state under a work folder, run as the calling user, so packages are
# downloaded (never installed) and the system's apt state stays untouched.
#   private_apt_download WORK "deb URL SUITE COMPONENTS" PACKAGE...
# leaves the packages' .deb files in WORK/debs.
private_apt_download() {
  local work=$1 source=$2
  shift 2
  mkdir -p "$work/apt/lists/partial" "$work/apt/archives/partial" "$work/debs"
  echo "$source" >"$work/apt/sources.list"
  local opts=(-o Dir::Etc::sourcelist="$work/apt/sources.list" -o Dir::Etc::sourceparts=/dev/null
              -o Dir::State="$work/apt" -o Dir::State::status=/dev/null -o Dir::Cache="$work/apt" -o Debug::NoLocking=1
              -o APT::Sandbox::User="$(id -un)")
  apt-get "${opts[@]}" update -qq
  (cd "$work/debs" && apt-get "${opts[@]}" download "$@")
}
