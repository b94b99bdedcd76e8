#!/usr/bin/perl
# Drives a shell on a guest's serial console (a Unix socket QEMU listens
# on): waits for the prompt, then sends each command and prints what came
# back until the command's end marker. perl-base only.
#   serial.pl SOCKET TIMEOUT_S COMMAND...
use strict;
$| = 1;
use warnings;
use IO::Socket::UNIX;
use IO::Select;
use Time::HiRes qw(time sleep);

my ($path, $timeout, @cmds) = @ARGV;
my $s;
for (1 .. 100) {
	last if $s = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $path);
	sleep 0.1;
}
die "cannot connect to $path\n" unless $s;
my $sel = IO::Select->new($s);
my $buf = '';

sub read_until {
	my ($re, $secs) = @_;
	my $end = time + $secs;
	while (time < $end) {
		if ($sel->can_read(0.2)) {
			sysread($s, my $c, 65536) or return 0;
			$buf .= $c;
		}
		return 1 if $buf =~ $re;
	}
	return 0;
}

syswrite($s, "\n");
# busybox ash prints "/ # " and may ask for the cursor position after it
read_until(qr{/ # }, $timeout) or die "no shell prompt within ${timeout}s\n";
for my $c (@cmds) {
	$buf = '';
	# Output is taken between two markers, split in the command so that
	# its echo (which the line editor may wrap) never matches them.
	syswrite($s, "echo BEGIN''MARK; $c; echo END''MARK\n");
	read_until(qr/^ENDMARK\r?$/m, $timeout) or die "'$c' did not finish\n";
	$buf =~ s/\r//g;
	$buf =~ /^BEGINMARK\n(.*?)^ENDMARK$/ms or die "'$c': no output markers\n";
	my $out = $1;
	# A kernel message that still reaches the console is not the answer.
	$out =~ s/^\[\s*\d+\.\d+\] .*\n//mg;
	print $out;
}
