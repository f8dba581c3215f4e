#!/usr/bin/env bash
# Lays out and builds the Debian package with plain dpkg-deb, the way
# Debian ships its nginx modules (libnginx-mod-http-echo is the model):
#
#   /usr/lib/nginx/modules/ngx_ai_relay_module.so
#   /usr/share/nginx/modules-available/mod-http-ai-relay.conf (load_module)
#   /etc/nginx/modules-enabled/50-mod-http-ai-relay.conf      (postinst's
#                                                   symlink, dh_nginx's)
#   /usr/bin/ai-relay, its man page, /usr/share/doc/<package>/
#
# Depends: the nginx ABI the module was compiled against (nginx-dev's
# libnginx-mod.abisubstvars, as dh_nginx reads it, checked against what
# the installed nginx Provides) and dpkg-shlibdeps' libraries.
#
# Environment (set by pkg/deb.mk): TOP BUILD MODULE CLI NGX_BUILD PACKAGE
# VERSION ARCH OUT; DEBFULLNAME/DEBEMAIL for the Maintainer field.
set -euo pipefail
umask 022

: "${TOP:?}" "${BUILD:?}" "${MODULE:?}" "${CLI:?}" "${NGX_BUILD:?}"
: "${PACKAGE:?}" "${VERSION:?}" "${ARCH:?}" "${OUT:?}"

die() { echo "make deb: $*" >&2; exit 1; }

for f in "$MODULE" "$CLI"; do
    [ -f "$f" ] || die "$f is missing (make build cli)"
done
for tool in dpkg-deb dpkg-shlibdeps strip gzip; do
    command -v "$tool" >/dev/null \
        || die "$tool is missing (apt-get install dpkg-dev binutils gzip)"
done

# ---------------------------------------------------------- nginx ABI

# what the module was compiled against: build/nginx is a copy of
# nginx-dev's /usr/share/nginx/src, whose debian/ folder names its ABI
built_abi=$(sed -n 's/^nginx:abi=//p' \
    "$NGX_BUILD/debian/libnginx-mod.abisubstvars" 2>/dev/null || true)
# what the nginx installed here offers
installed_abi=$(dpkg-query -W -f='${Provides}' nginx 2>/dev/null \
    | tr ',' '\n' | sed -n 's/^ *\(nginx-abi-[^ ]*\).*/\1/p' | head -1)

if [ -n "$built_abi" ] && [ -n "$installed_abi" ] \
    && [ "$built_abi" != "$installed_abi" ]
then
    die "the module in $NGX_BUILD was compiled for $built_abi but the" \
        "installed nginx provides $installed_abi (nginx was upgraded since):" \
        "make clean && make deb"
fi
abi=${built_abi:-$installed_abi}
[ -n "$abi" ] || die "cannot tell the nginx ABI: neither" \
    "$NGX_BUILD/debian/libnginx-mod.abisubstvars nor an installed nginx" \
    "providing nginx-abi-* (apt-get install nginx nginx-dev)"

# ----------------------------------------------------------- the tree

stage=$BUILD/deb
root=$stage/root
doc=$root/usr/share/doc/$PACKAGE
rm -rf "$stage"
mkdir -p "$root/DEBIAN" "$root/usr/lib/nginx/modules" "$root/usr/bin" \
         "$root/usr/share/nginx/modules-available" "$doc/examples" \
         "$root/usr/share/man/man1" "$stage/debian"

# stripped as dh_strip does (the build's own files keep their symbols)
install -m 644 "$MODULE" "$root/usr/lib/nginx/modules/ngx_ai_relay_module.so"
strip --remove-section=.comment --remove-section=.note --strip-unneeded \
    "$root/usr/lib/nginx/modules/ngx_ai_relay_module.so"
install -m 755 "$CLI" "$root/usr/bin/ai-relay"
strip --remove-section=.comment --remove-section=.note "$root/usr/bin/ai-relay"

# what dh_nginx would write for it: the same form as mod-http-echo.conf
# (a path relative to nginx's prefix, where Debian's nginx-common links
# modules/ to /usr/lib/nginx/modules)
echo "load_module modules/ngx_ai_relay_module.so;" \
    > "$root/usr/share/nginx/modules-available/mod-http-ai-relay.conf"

# docs: compressed as dh_compress does (over 4 kB, changelogs, man
# pages), not the copyright nor the examples
gzip -9n < "$TOP/README.md"   > "$doc/README.md.gz"
gzip -9n < "$TOP/docs/cli.md" > "$doc/cli.md.gz"
install -m 644 "$TOP/conf.example" "$doc/examples/conf.example"
install -m 644 "$TOP/pkg/deb/copyright" "$doc/copyright"
gzip -9n < "$TOP/pkg/deb/ai-relay.1" > "$root/usr/share/man/man1/ai-relay.1.gz"

# ---------------------------------------------------------- changelog

git_top() { git -C "$TOP" "$@" 2>/dev/null; }

if sde=$(git_top log -1 --format=%ct) && [ -n "$sde" ]; then
    sha=$(git_top rev-parse --short=7 HEAD)
else
    sde=$(date +%s) sha=
fi
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$sde}

if [ -n "${DEBFULLNAME:-}" ] && [ -n "${DEBEMAIL:-}" ]; then
    maintainer="$DEBFULLNAME <$DEBEMAIL>"
else
    maintainer=$(git_top log -1 --format='%an <%ae>' || true)
    maintainer=${maintainer:-ngx_ai_relay authors <ai-relay@localhost>}
fi

{
    echo "$PACKAGE ($VERSION) unstable; urgency=medium"
    echo
    if [ -n "$sha" ]; then
        echo "  * Built from ngx_ai_relay git $sha" \
             "($(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)); latest commits:"
        git_top log -20 --format='%s' | perl -MText::Wrap -ne '
            chomp; $Text::Wrap::columns = 79;
            print wrap("    - ", "      ", $_), "\n"'
    else
        echo "  * Built from an ngx_ai_relay source tree (no git)."
    fi
    echo
    echo " -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n > "$doc/changelog.gz"

# ------------------------------------------------------------ control

# dpkg-shlibdeps wants a debian/control naming the package
printf 'Source: ngx-ai-relay\n\nPackage: %s\nArchitecture: any\n' "$PACKAGE" \
    > "$stage/debian/control"
shlibs=$(cd "$stage" && dpkg-shlibdeps -O --warnings=1 \
            root/usr/lib/nginx/modules/ngx_ai_relay_module.so \
            root/usr/bin/ai-relay 2>"$stage/shlibdeps.log" \
         | sed -n 's/^shlibs:Depends=//p') || true
[ -n "$shlibs" ] || { cat "$stage/shlibdeps.log" >&2; die "dpkg-shlibdeps failed"; }

installed_size=$(du -s -k --apparent-size --exclude=DEBIAN "$root" | cut -f1)

sed -e "s|@PACKAGE@|$PACKAGE|" -e "s|@VERSION@|$VERSION|" \
    -e "s|@ARCH@|$ARCH|" -e "s|@MAINTAINER@|$maintainer|" \
    -e "s|@INSTALLED_SIZE@|$installed_size|" \
    -e "s|@DEPENDS@|$abi, $shlibs|" \
    "$TOP/pkg/deb/control.in" > "$root/DEBIAN/control"

for s in postinst prerm postrm; do
    install -m 755 "$TOP/pkg/deb/$s" "$root/DEBIAN/$s"
done

(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' \
    | LC_ALL=C sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

# reproducible: one date for every file, the last commit's
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$(dirname "$OUT")"
dpkg-deb --root-owner-group -Zxz --build "$root" "$OUT" >/dev/null
echo "built $OUT"
echo "  Depends: $abi, $shlibs"
