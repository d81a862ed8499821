#!/usr/bin/env bash
# Fetch the unlabelled photos of real faces that `resnet-realfaces` learns from, at the commits it
# was trained on (listed with their terms in the README's "Data" section). They carry no expression
# labels: teachers label them. Non-commercial research use only; keep them out of the repository.
#
#   bash models/fetch_real_faces.sh [DEST]      # DEST defaults to ~/fer-data
#
# Gives DEST/utkface/data/UTKFace/unlabeled (23,707 files) and DEST/celeba/celebA (10,000 files);
# pass both to `train --unlabeled DIR1:DIR2` (duplicate files are counted once). Also
# DEST/allagefaces/All-Age-Faces Dataset/original images (13,322 loose crops, mostly East Asian faces,
# no licence given: research use), which the benchmark document's later students add as a third folder.
set -euo pipefail
dest=${1:-$HOME/fer-data}

fetch() {  # repository, commit, path inside it, folder under DEST
  local repo=$1 commit=$2 path=$3 name=$4 tmp
  if [ -d "$dest/$name/$path" ]; then
    echo "$dest/$name/$path: already there"
    return
  fi
  tmp=$(mktemp -d)
  git clone -q --filter=blob:none --no-checkout "https://github.com/$repo" "$tmp"
  git -C "$tmp" sparse-checkout set --no-cone "/$path/"
  git -C "$tmp" checkout -q "$commit"
  mkdir -p "$dest/$name/$(dirname "$path")"
  mv "$tmp/$path" "$dest/$name/$path"
  rm -rf "$tmp"
  echo "$dest/$name/$path: $(find "$dest/$name/$path" -type f | wc -l) files"
}

fetch mattans/AgeProgression 2d937c615a3d10408db0ea795842e569bc9eedb0 data/UTKFace/unlabeled utkface
fetch karthikSingireddy/cs389-hw4 702f8f7bdf59386959872d52879faac800f20ab1 celebA celeba
fetch middleyuan/All-Age-Faces-Dataset 28741a75e2efb7a2f96e13d4beb58411536f473d "All-Age-Faces Dataset/original images" allagefaces
