#!/usr/bin/env bash
# Checks the user-facing documentation, as CI runs it (ctest: test_docs):
#   - README.md is at most 300 lines (details belong in docs/);
#   - every relative link in README.md and docs/*.md resolves to a file or
#     folder inside the repository (tracked by git, when this is a git work
#     tree, so that it exists in a fresh clone);
#   - every #anchor of such a link names a heading (GitHub's slug: lower
#     case, punctuation dropped, spaces to hyphens, -1, -2... for repeats) or
#     an explicit id/name in the target Markdown file.
# Links inside code blocks and `inline code` are not links and are skipped,
# as are absolute URLs (http:, https:, mailto:, ...).
# Usage: scripts/check-docs.sh [REPO_ROOT]     (default: this script's repository)
# Prints every problem as FILE:LINE: ... and exits 1 if there is any.
set -euo pipefail
root=$(cd "${1:-$(dirname "$0")/..}" && pwd)
max_lines=300
cd "$root"

fail=0
if [ ! -f README.md ]; then
    echo "check-docs: README.md is missing in $root"
    exit 1
fi
lines=$(wc -l <README.md)
if [ "$lines" -gt "$max_lines" ]; then
    echo "check-docs: README.md has $lines lines, more than $max_lines (move details to docs/)"
    fail=1
fi

files=(README.md)
for f in docs/*.md; do [ -f "$f" ] && files+=("$f"); done

# The tracked files, when this is a git work tree (staged files count: a
# commit about to be made is checked as it will be).
tracked=""
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    tracked=$(mktemp)
    trap 'rm -f "$tracked"' EXIT
    git -C "$root" ls-files -z >"$tracked"
fi

# perl (perl-base is part of every Debian system) does the parsing.
LC_DOCS_TRACKED=$tracked perl -CSD -Mutf8 -e '
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Spec;

my $root = shift @ARGV;
my ($nlinks, $bad) = (0, 0);
my %tracked;
my $have_git = 0;
if ($ENV{LC_DOCS_TRACKED} ne "") {
    $have_git = 1;
    open(my $t, "<:raw", $ENV{LC_DOCS_TRACKED}) or die "check-docs: $!\n";
    local $/ = "\0";
    while (my $p = <$t>) {
        chomp $p;
        utf8::decode($p);
        $tracked{$p} = 1;
        # Every folder above a tracked file is tracked too.
        my $d = $p;
        while ($d =~ s{/[^/]*$}{}) { last if $tracked{"$d/"}; $tracked{"$d/"} = 1; }
    }
}

# GitHub-style heading slug.
sub slug {
    my $t = shift;
    $t =~ s/\[([^\]]*)\]\([^)]*\)/$1/g;   # [text](url) -> text
    $t =~ s/<[^>]+>//g;                   # inline HTML
    $t =~ s/[`*]//g;                      # code and emphasis marks
    $t =~ s/^\s+|\s+$//g;
    $t = lc $t;
    $t =~ s/[^\p{L}\p{M}\p{N}\p{Pc} -]//g;
    $t =~ s/ /-/g;
    return $t;
}

# Lines of a Markdown file outside fenced code blocks (others come back as "").
my %cache;
sub prose_lines {
    my $path = shift;
    return $cache{$path} if $cache{$path};
    open(my $fh, "<:encoding(UTF-8)", $path) or return [];
    my @out;
    my $fence = "";
    while (my $l = <$fh>) {
        chomp $l;
        if ($fence eq "" && $l =~ /^\s{0,3}(`{3,}|~{3,})/) { $fence = substr($1, 0, 3); push @out, ""; next; }
        if ($fence ne "" && $l =~ /^\s{0,3}\Q$fence\E/) { $fence = ""; push @out, ""; next; }
        push @out, $fence eq "" ? $l : "";
    }
    close $fh;
    return $cache{$path} = \@out;
}

my %anchors_of;
sub anchors {
    my $path = shift;
    return $anchors_of{$path} if $anchors_of{$path};
    my (%a, %seen);
    for my $l (@{ prose_lines($path) }) {
        if ($l =~ /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/) {
            my $s = slug($1);
            my $n = $seen{$s}++;
            $a{$n ? "$s-$n" : $s} = 1;
        }
        while ($l =~ /\b(?:id|name)\s*=\s*"([^"]+)"/g) { $a{lc $1} = 1; }
    }
    return $anchors_of{$path} = \%a;
}

sub unescape { my $s = shift; $s =~ s/%([0-9A-Fa-f]{2})/chr(hex($1))/ge; return $s; }

sub problem {
    my ($file, $line, $target, $why) = @_;
    print "check-docs: $file:$line: link ($target): $why\n";
    $bad++;
}

for my $file (@ARGV) {
    my $lines = prose_lines($file);
    for my $i (0 .. $#$lines) {
        my $l = $lines->[$i];
        next if $l eq "";
        $l =~ s/(`+).*?\1//g;             # inline code is not a link
        my @targets;
        while ($l =~ /\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/g) { push @targets, $1; }
        push @targets, $1 if $l =~ /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/;
        for my $t (@targets) {
            next if $t =~ m{^[A-Za-z][A-Za-z0-9+.-]*:} || $t =~ m{^//};
            $nlinks++;
            my ($p, $anchor) = $t =~ /^([^#]*)(?:#(.*))?$/;
            $anchor = defined $anchor ? lc unescape($anchor) : "";
            my $rel;
            if ($p eq "") {
                $rel = $file;
            } else {
                my $u = unescape($p);
                my $base = $u =~ m{^/} ? "" : dirname($file);
                my @parts;
                for my $c (split m{/}, ($base eq "." || $base eq "" ? "" : "$base/") . $u) {
                    next if $c eq "" || $c eq ".";
                    if ($c eq "..") {
                        if (!@parts) { @parts = ("..", "outside"); last; }
                        pop @parts;
                    } else {
                        push @parts, $c;
                    }
                }
                if (@parts && $parts[0] eq "..") { problem($file, $i + 1, $t, "points outside the repository"); next; }
                $rel = @parts ? join("/", @parts) : ".";
            }
            my $abs = "$root/$rel";
            if (!-e $abs) { problem($file, $i + 1, $t, "$rel does not exist"); next; }
            if ($have_git && $p ne "" && $rel ne "." && !$tracked{$rel} && !$tracked{"$rel/"}) {
                problem($file, $i + 1, $t, "$rel is not tracked by git (a fresh clone would not have it)");
                next;
            }
            next if $anchor eq "" || -d $abs || $rel !~ /\.md$/i;
            problem($file, $i + 1, $t, "no heading or id \"$anchor\" in $rel") unless anchors($abs)->{$anchor};
        }
    }
}
print "check-docs: $nlinks relative links in " . scalar(@ARGV) . " files checked\n";
exit($bad ? 1 : 0);
' "$root" "${files[@]}" || fail=1

if [ $fail -eq 0 ]; then
    echo "check-docs: ok (README.md: $lines lines, at most $max_lines)"
fi
exit $fail
