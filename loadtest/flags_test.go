package loadtest

import "testing"

func TestParseShare(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{"1%", 0.01, false}, {"0.5%", 0.005, false}, {"100%", 1, false}, {"0.25", 0.25, false},
		{"0", -1, false}, {"0%", -1, false}, {" 2 % ", 0.02, false},
		{"101%", 0, true}, {"1.5", 0, true}, {"-1%", 0, true}, {"abc", 0, true}, {"", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseShare(tt.in)
		if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
			t.Errorf("ParseShare(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"100KiB", 100 << 10, false}, {"1MiB", 1 << 20, false}, {"4096", 4096, false}, {"64k", 64 << 10, false},
		{"2M", 2 << 20, false}, {"0", 0, true}, {"-5", 0, true}, {"1GiB", 0, true}, {"KiB", 0, true}, {"5000MiB", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
			t.Errorf("ParseSize(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
