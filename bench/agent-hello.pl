#!/usr/bin/perl
# Waits for a vmenv agent to answer HELLO on a QEMU chardev socket.
# Prints the seconds from START (epoch float) to the answer.
#   agent-hello.pl SOCKET START
use strict;
use warnings;
use IO::Socket::UNIX;
use IO::Select;
use Time::HiRes qw(time sleep);

my ($path, $start) = @ARGV;
my $s;
until ($s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $path)) {
	die "no socket\n" if time() - $start > 300;
	sleep 0.01;
}
my $hello = pack('N C C n N N', 4, 1, 0, 0, 0, 1);
my $sel = IO::Select->new($s);
my $buf = '';
while (time() - $start < 300) {
	$s->syswrite($hello);
	if ($sel->can_read(0.1)) {
		$s->sysread(my $c, 4096) or die "closed\n";
		$buf .= $c;
		if (length($buf) >= 12 && unpack('x4 C', $buf) == 1) {
			printf "%.3f\n", time() - $start;
			exit 0;
		}
	}
}
die "timeout\n";
