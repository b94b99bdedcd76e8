#!/usr/bin/perl
# Reads stdin (or a Unix socket) to EOF or N bytes; prints bytes and MB/s
# from the first byte to the last.  count.pl [SOCKET N]
use strict;
use warnings;
use IO::Socket::UNIX;
use Time::HiRes qw(time sleep);
my ($path, $want) = @ARGV;
my $in = \*STDIN;
if ($path) {
	my $t0 = time();
	until ($in = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $path)) {
		die "no socket\n" if time() - $t0 > 300;
		sleep 0.01;
	}
}
my ($n, $first, $last) = (0, 0, 0);
while (my $r = sysread($in, my $buf, 1 << 20)) {
	$first ||= time();
	$n += $r;
	$last = time();
	last if $want && $n >= $want;
}
my $dt = $last - $first;
printf "%d %.1f\n", $n, $dt > 0 ? $n / $dt / 1e6 : 0;
