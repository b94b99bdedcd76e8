#!/usr/bin/perl
use strict;
use warnings;
# test/fuzz/seed_wire.pl DIR: writes the seed corpus of fuzz_wire (kept in
# test/fuzz/corpus/wire): one valid payload per decoder, the selector byte
# first.
sub u32 { pack "N", $_[0] } sub str { u32(length $_[0]) . $_[0] }
my $tok = "0123456789abcdef" x 4;
my $v1 = str("node1") . str("alice") . u32(1000) . u32(1000) .
	str("alice") . str("/home/alice") . pack("q>", 1700000000) .
	u32(1) . str("vmenv.workdir") . str("/home/alice/job");
my $v2 = $v1 . u32(1) . str("10.77.0.3/16") . str($tok) . u32(2) .
	u32(1000) . u32(100) . u32(2) . str("node0") . str("10.77.0.2") .
	str("node1") . str("10.77.0.3");
my $exec = u32(1000) . u32(1000) . u32(1) . u32(100) . u32(4) .
	str("/tmp") . u32(2) . str("sh") . str("-c") . u32(1) .
	str("PATH=/bin") . str("#!/bin/sh\necho hi\n");
my $mac = "\x5a" x 32;
my $req = u32(2) . $mac . str("/tmp") . u32(3) . str("/bin/sh") .
	str("-c") . str("echo \"a b\" %s") . u32(2) . str("PATH=/bin") .
	str("LC_ALL=C");
my $nonces = ("\x11" x 32) . ("\x22" x 32) . "\x01\x07";
my %seed = (setup1 => "\0$v1", setup2 => "\1$v2", exec => "\2$exec",
	request => "\3$req", rshhello => "\7" . u32(2) . ("\x33" x 32),
	rshaccept => "\7" . u32(4242) . $mac, reqmac => "\x08$nonces$req",
	reqv1 => "\3" . u32(1) . str($tok) . str("/") . u32(1) . str("true") . u32(0),
	hdr => "\4" . pack("N C C n N", 4, 5, 0, 0, 7),
	bulkexec => "\2" . u32(0) . u32(0) . u32(0) . u32(8) . str("/") .
		u32(1) . str("true") . u32(0) . u32(3) . ("\xffs" x 8) . ("\xffe" x 8),
	bulk => "\5\7junk\xffSTARTmarker....hello\xffENDmarker\xff" .
		"\xffENDmarker......after",
	# Frames from the agent: selector, type, session/bulk bits, payload.
	hello => "\6\1\0" . u32(2) . u32(0xe) . str("vmenv-agent 0.1"),
	started => "\6\6\3" . u32(42) . u32(0),
	stdout => "\6\x09\1" . "some output\n",
	exit => "\6\x0d\1" . u32(0) . u32(3),
	refused => "\6\x13\0" . u32(16) . u32(16) . str("busy"));
for (keys %seed) {
	open my $f, ">", "$ARGV[0]/$_" or die; print $f $seed{$_}; close $f;
}
