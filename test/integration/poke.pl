#!/usr/bin/perl
# Sends raw bytes to vmmd's socket and prints what comes back (or "closed").
# perl-base is Essential in Debian, so this needs nothing installed.
#   poke.pl SOCKET hex:HEXBYTES | json:TEXT | oversize
use strict;
use warnings;
use IO::Socket::UNIX;
use IO::Select;

my ($path, $what) = @ARGV;
my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $path)
	or die "connect $path: $!\n";
my $msg;
if ($what =~ /^json:(.*)$/s) {
	$msg = pack('N', length($1)) . $1;
} elsif ($what =~ /^hex:(.*)$/) {
	$msg = pack('H*', $1);
} elsif ($what eq 'oversize') {
	$msg = pack('N', 0xFFFFFFF0) . ('x' x 64);
} else {
	die "bad request kind\n";
}
$s->syswrite($msg);
my $sel = IO::Select->new($s);
my $buf = '';
while ($sel->can_read(10)) {
	my $n = $s->sysread(my $chunk, 65536);
	last if !$n;
	$buf .= $chunk;
}
if (length($buf) >= 4) {
	print substr($buf, 4), "\n";
} else {
	print "closed\n";
}
