fn main() {
    println!("podscale");
}
